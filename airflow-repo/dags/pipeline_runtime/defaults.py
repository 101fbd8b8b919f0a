"""Task defaults every DAG shares: one owner, retries with backoff, a timeout, a failure alert."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pipeline_runtime.alerts import notify_failure
from pipeline_runtime.settings import settings

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "data-platform",
    "retries": 2,
    "retry_delay": dt.timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=10),
    "execution_timeout": dt.timedelta(minutes=30),
    "on_failure_callback": notify_failure,
}


def fresh_by() -> list[dt.timedelta]:
    """When a daily interval's data must be in: the day itself, then HH:MM the next morning.

    Set by `PLATFORM_DATA_FRESH_BY` (environment configuration, so reading it
    while parsing is safe). Unset means no deadline: Airflow 3.3's `dags test`
    serializes a DAG's deadlines without their ids and fails the run it just
    finished, so local runs, tests and the demo leave it off (docs/adr/0012).
    """
    value = settings().data_fresh_by
    if not value:
        return []
    hours, _, minutes = value.partition(":")
    try:
        offset = dt.timedelta(hours=int(hours), minutes=int(minutes or 0))
    except ValueError:
        raise ValueError(f"PLATFORM_DATA_FRESH_BY={value!r}: expected HH:MM") from None
    return [dt.timedelta(days=1) + offset]
