"""Extract and load every batch source configured for this environment, one data interval at a time.

Which sources run is configuration, read when the run starts (never while
this file is parsed): the Airflow Variable `platform_sources`, else the
`PLATFORM_SOURCES` environment variable, a comma-separated list of names from
the extract & load sources file (REST APIs, file drops, Google Sheets). Each
(source, days) pair is one mapped extract -> load: the days land in
`raw/<source>/dt=YYYY-MM-DD/` with a manifest and each replaces its own
interval in the raw table, so any re-run is idempotent.

Every load announces the raw table it filled as an Asset (through the
`raw_tables` alias), which is what schedules `dbt_transform`.

Trigger with `{"start": "YYYY-MM-DD", "end": "YYYY-MM-DD", "days_per_task": 7}`
to reprocess a range.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import (  # type: ignore[attr-defined]  # Deadline* are exported lazily
    CronDataIntervalTimetable,
    DeadlineAlert,
    DeadlineReference,
    Param,
    SyncCallback,
    dag,
    get_current_context,
    task,
    task_group,
)
from airflow.sdk.exceptions import AirflowFailException

from pipeline_runtime import commands, runner
from pipeline_runtime.alerts import notify_deadline_missed
from pipeline_runtime.assets import RAW_TABLES, raw_table
from pipeline_runtime.defaults import DEFAULT_ARGS, fresh_by
from pipeline_runtime.intervals import LOCAL_TZ, NoIntervalError, landed_span, plan_intervals
from pipeline_runtime.sources import configured_sources


@dag(
    dag_id="events_ingest",
    description="Extract each configured batch source to the bucket and load it into the warehouse, per day",
    # A real data interval (one local day), not Airflow 3's default trigger
    # timetable whose interval is empty: each run owns the day before it starts.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone=LOCAL_TZ),
    start_date=pendulum.datetime(2025, 1, 1, tz=LOCAL_TZ),
    # Users read yesterday's numbers in the morning: alert when the raw data
    # for a day is not loaded by PLATFORM_DATA_FRESH_BY (local HH:MM) next day.
    deadline=[
        DeadlineAlert(
            reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
            interval=interval,
            callback=SyncCallback(notify_deadline_missed, kwargs={"what": "the day's raw data"}),
        )
        for interval in fresh_by()
    ],
    catchup=False,
    max_active_runs=1,
    max_active_tasks=4,
    default_args=DEFAULT_ARGS,
    params={
        "start": Param(None, type=["null", "string"], format="date", description="First local day"),
        "end": Param(None, type=["null", "string"], format="date", description="Day after the last"),
        "days_per_task": Param(1, type="integer", minimum=1, maximum=31, description="Days per task"),
        "sources": Param(
            None, type=["null", "array"], items={"type": "string"}, description="Override the sources"
        ),
    },
    tags=["events", "extract-load"],
    doc_md=__doc__,
)
def events_ingest() -> None:
    @task
    def plan() -> list[dict[str, str]]:
        """One batch per configured source and chunk of days."""
        context = get_current_context()
        params = context["params"]
        sources = params.get("sources") or configured_sources()
        if not sources:
            raise ValueError("no sources configured (Variable platform_sources / PLATFORM_SOURCES)")
        try:
            chunks = plan_intervals(
                params,
                context.get("data_interval_start"),
                context.get("data_interval_end"),
                params.get("days_per_task"),
            )
        except NoIntervalError as exc:
            raise AirflowFailException(str(exc)) from exc
        return [{"source": source, **chunk} for source in sources for chunk in chunks]

    @task(pool="extract", retries=3)
    def extract(batch: dict[str, str]) -> dict[str, Any]:
        results = runner.run(commands.extract_source(batch["source"], batch["start"], batch["end"]))
        # A file's extract ends with its reconciliation, which counts the records it quarantined
        # itself (those without a day); a REST extract's lines have none. The load covers every
        # day the extract landed (a database source lands earlier days again, for late commits).
        return {
            **batch,
            **landed_span(batch, results),
            "landed": sum(int(r.get("rows", 0)) for r in results),
            "quarantined_at_extract": sum(int(r.get("quarantined", 0)) for r in results),
        }

    @task(pool="warehouse", outlets=[RAW_TABLES])
    def load(extracted: dict[str, Any]) -> dict[str, Any]:
        source = extracted["source"]
        results = runner.run(commands.load(source, extracted["start"], extracted["end"]))
        get_current_context()["outlet_events"][RAW_TABLES].add(
            raw_table(source), extra={"start": extracted["start"], "end": extracted["end"]}
        )
        return {
            **extracted,
            **{key: sum(int(r[key]) for r in results) for key in ("rows_in", "loaded", "quarantined")},
        }

    @task_group
    def ingest(batch: dict[str, str]) -> Any:
        return load(extract(batch))  # type: ignore[arg-type]  # TaskFlow passes an XComArg for a dict

    ingest.expand(batch=plan())


events_ingest()
