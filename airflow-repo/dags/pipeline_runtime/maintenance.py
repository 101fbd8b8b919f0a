"""Retention rules of platform_maintenance, as plain functions so they are tested without Airflow running."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

from pipeline_runtime.settings import settings


def retention_days(name: str) -> int:
    """Days to keep of `name` (metadata, logs, bucket): see settings.RETENTION."""
    return settings().retention(name)


def reference_time(context: Any) -> dt.datetime:
    """'Now' for a maintenance run: the end of its data interval (a re-run of a past day behaves as then)."""
    return context.get("data_interval_end") or context["dag_run"].run_after


def metadata_db_env() -> dict[str, str]:
    """The environment for `airflow db clean` run from a task.

    Airflow 3's task supervisor replaces the metadata DB URL inside tasks with
    `airflow-db-not-allowed:///`, so tasks cannot touch the DB by accident. This
    one task cleans the DB on purpose: it gets the URL from
    PLATFORM_METADATA_DB_URL (the chart sets it from the metadata Secret; `make
    up` from its own configuration) and hands it to the subprocess only.
    """
    url = settings().metadata_db_url
    if not url:
        raise RuntimeError(
            "PLATFORM_METADATA_DB_URL is not set: tasks cannot read the metadata DB URL in Airflow 3,"
            " so platform_maintenance needs it passed explicitly (from the metadata DB Secret)"
        )
    return {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url}  # noqa: TID251 - passed on, not read


def db_clean_argv(before: dt.datetime) -> list[str]:
    return [
        str(Path(sys.executable).with_name("airflow")),
        "db",
        "clean",
        "--clean-before-timestamp",
        before.isoformat(),
        "--skip-archive",  # archive tables would grow the DB this exists to shrink
        "--yes",
    ]


def remove_old_files(root: Path, cutoff: dt.datetime) -> int:
    """Delete files last written before `cutoff`, then the folders left empty; return the count."""
    removed = 0
    threshold = cutoff.timestamp()
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):  # deepest first
        if path.is_file() and path.stat().st_mtime < threshold:
            path.unlink()
            removed += 1
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return removed
