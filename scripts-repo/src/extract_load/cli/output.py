"""What a command prints: one JSON object per line on stdout, redacted, and the same list in RESULTS_FILE."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from extract_load.observability import RunMetrics

if TYPE_CHECKING:
    from extract_load.landing.manifest import Manifest
    from extract_load.sources.file import FileExtract


def emit(result: dict[str, object]) -> None:
    """Results go to stdout as one JSON line so orchestrators can parse them.

    A pod's stdout is only a log to Kubernetes, so when `RESULTS_FILE` is set
    (KubernetesPodOperator's `/airflow/xcom/return.json`) every result so far is
    also written there as one JSON list: the task's XCom is then the same list
    the local runner parses from stdout.
    """
    from extract_load.redaction import redact
    from extract_load.settings import settings

    result = json.loads(redact(json.dumps(result)))
    click.echo(json.dumps(result, sort_keys=True))
    path = settings().results_file
    if path is not None:
        earlier = json.loads(path.read_text()) if path.is_file() and path.stat().st_size else []
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(path.name + ".tmp")
        scratch.write_text(json.dumps([*earlier, result], sort_keys=True))
        scratch.replace(path)


def manifest_result(manifest: Manifest, seconds: float | None = None) -> dict[str, object]:
    result: dict[str, object] = {
        "source": manifest.source,
        "interval_start": manifest.interval_start,
        "rows": manifest.row_count,
        "bytes": manifest.bytes,
        "parts": len(manifest.parts),
        "run_id": manifest.run_id,
    }
    if seconds is not None:
        result["seconds"] = round(seconds, 3)
    return result


def metrics() -> RunMetrics | None:
    """This run's metrics (the group's context object), published when the command ends."""
    return click.get_current_context().find_object(RunMetrics)


def emit_landed(manifests: list[Manifest], summary: dict[str, object]) -> None:
    """One line (and metrics) per landed day, then the summary: a file's reconciliation, a table's mark."""
    run_metrics = metrics()
    for manifest in manifests:
        if run_metrics is not None:
            run_metrics.extracted(
                manifest.source, manifest.interval_start, manifest.row_count, manifest.bytes, 0.0
            )
        emit(manifest_result(manifest))
    emit(summary)


def emit_file_extract(done: FileExtract) -> None:
    """One line per landed day, then the file's reconciliation."""
    emit_landed(done.manifests, done.as_dict())
