"""Keep the platform's own storage bounded: Airflow's metadata DB, task logs and the landing bucket.

- `airflow db clean` removes metadata rows (task instances, XComs, logs
  tables, ...) older than `PLATFORM_METADATA_RETENTION_DAYS` (default 90), so
  the scheduler's queries stay fast. Locally from this task; on Kubernetes
  the platform chart's CronJob `airflow-db-clean` does it, the one workload
  given the metadata DB's URL (no task holds it).
- Task log files on this worker older than `PLATFORM_LOG_RETENTION_DAYS`
  (default 30) are deleted; remote logs (GCS) expire by the bucket's
  lifecycle rule instead.
- Landed days older than `BUCKET_RETENTION_DAYS` (default 400: longer than
  any reload you would want) are removed from the bucket, whole days only,
  for every configured source.

Ages are measured from the run's data interval, never from the clock at parse
time, so a re-run of a past interval removes what that day would have.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import dag, get_current_context, task

from pipeline_runtime import commands, runner
from pipeline_runtime.dbt_project import on_kubernetes
from pipeline_runtime.defaults import DEFAULT_ARGS
from pipeline_runtime.intervals import LOCAL_TZ
from pipeline_runtime.maintenance import (
    db_clean_argv,
    metadata_db_env,
    reference_time,
    remove_old_files,
    retention_days,
)
from pipeline_runtime.sources import configured_sources, stream_source


@dag(
    dag_id="platform_maintenance",
    description="Clean Airflow's metadata DB, old task logs and landed days past retention",
    schedule="0 3 * * *",
    start_date=pendulum.datetime(2025, 1, 1, tz=LOCAL_TZ),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "execution_timeout": dt.timedelta(hours=1)},
    tags=["maintenance"],
    doc_md=__doc__,
)
def platform_maintenance() -> None:
    @task
    def clean_metadata_db() -> dict[str, Any]:
        if on_kubernetes():
            # No task there holds the metadata DB's URL: the platform chart's CronJob does this.
            return {"skipped": "on Kubernetes the CronJob airflow-db-clean cleans the metadata DB"}
        keep = retention_days("metadata")
        before = reference_time(get_current_context()) - dt.timedelta(days=keep)
        completed = subprocess.run(
            db_clean_argv(before),
            env=metadata_db_env(),
            capture_output=True,
            text=True,
            timeout=3000,
            check=False,
        )
        print(completed.stdout[-5000:], completed.stderr[-5000:], sep="\n")
        if completed.returncode != 0:
            raise RuntimeError(f"airflow db clean exited with {completed.returncode}")
        return {"clean_before": before.isoformat(), "retention_days": keep}

    @task
    def clean_task_logs() -> dict[str, Any]:
        from airflow.configuration import conf

        if conf.getboolean("logging", "remote_logging", fallback=False):
            return {"skipped": "remote logging: the log bucket's lifecycle rule expires them"}
        keep = retention_days("logs")
        root = Path(conf.get("logging", "base_log_folder"))
        removed = remove_old_files(root, reference_time(get_current_context()) - dt.timedelta(days=keep))
        return {"removed_files": removed, "retention_days": keep, "folder": str(root)}

    @task
    def sources() -> list[str]:
        # Every batch source and the streamed one: all of them land in the bucket.
        return sorted({*configured_sources(), stream_source()})

    @task
    def prune_bucket(source: str) -> dict[str, Any]:
        keep = retention_days("bucket")
        reference = pendulum.instance(reference_time(get_current_context()))
        today = reference.in_timezone(LOCAL_TZ).date().isoformat()
        return runner.run(commands.prune(source, keep, today))[-1]

    clean_metadata_db()
    clean_task_logs()
    prune_bucket.expand(source=sources())


platform_maintenance()
