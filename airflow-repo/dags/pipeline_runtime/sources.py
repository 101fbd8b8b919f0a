"""Which sources this environment runs: configuration read when a task runs, never at parse time."""

from __future__ import annotations

from pipeline_runtime.settings import settings


def configured_sources() -> list[str]:
    """The batch sources: Airflow Variable `platform_sources`, else `PLATFORM_SOURCES` (comma-separated)."""
    from airflow.sdk import Variable

    configured = Variable.get("platform_sources", settings().sources)
    return [name.strip() for name in configured.split(",") if name.strip()]


def stream_source() -> str:
    """The source fed from Kafka by `events_stream` (bucket prefix and raw table).

    Never a batch source's name: `extract` replaces a batch source's days whole, which
    deleted the stream's committed batches. `extract-load stream` refuses a name the
    sources file declares with another kind, and the landing refuses mixing feeds.
    """
    return settings().stream_source
