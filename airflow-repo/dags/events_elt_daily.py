"""Daily events ELT: events API -> bucket -> warehouse raw -> dbt build -> dashboard.

Each daily data interval (local time, GMT+8) is extracted into the bucket as
`raw/events/dt=YYYY-MM-DD/` with a manifest, then loaded into the raw table by
replacing that day, so any re-run is idempotent. dbt checks the raw data's
freshness, then builds every model with its tests gating what is downstream,
and the dashboard is published.

A run normally covers its own data interval. Trigger it with
`{"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}` to reprocess a range in one run:
the days are mapped, so they extract and load in parallel where pools allow.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
from airflow.sdk import Asset, Connection, Param, dag, get_current_context, task, task_group

from pipeline_runtime import commands, runner
from pipeline_runtime.defaults import DEFAULT_ARGS
from pipeline_runtime.intervals import LOCAL_TZ, plan_intervals

SOURCE = "events"
RAW_EVENTS = Asset("warehouse://raw/events")
ANALYTICS = Asset("warehouse://analytics/growth_accounting_weekly")


@dag(
    dag_id="events_elt_daily",
    description="Extract the events API per day, load raw, build dbt, publish the dashboard",
    schedule="@daily",
    start_date=pendulum.datetime(2025, 1, 1, tz=LOCAL_TZ),
    catchup=False,
    max_active_runs=1,
    max_active_tasks=4,
    default_args=DEFAULT_ARGS,
    params={
        "start": Param(
            None,
            type=["null", "string"],
            format="date",
            description="First local day to process (default: the data interval)",
        ),
        "end": Param(
            None, type=["null", "string"], format="date", description="Day after the last one to process"
        ),
        "days_per_task": Param(
            1,
            type="integer",
            minimum=1,
            maximum=31,
            description="Days each extract and load task covers when reprocessing a range",
        ),
    },
    tags=["events", "extract-load", "dbt", "dashboard"],
    doc_md=__doc__,
)
def events_elt_daily() -> None:
    @task
    def plan_days() -> list[dict[str, str]]:
        """The local days this run covers (its data interval, or the range in params), in chunks.

        Each day is still extracted, landed and loaded as its own interval; a
        chunk only shares one task's start-up cost, which matters when a
        range of hundreds of days is reprocessed.
        """
        context = get_current_context()
        params = context["params"]
        return plan_intervals(
            params, context["data_interval_start"], context["data_interval_end"], params.get("days_per_task")
        )

    @task(pool="events_api", retries=3)
    def extract(days: dict[str, str]) -> dict[str, Any]:
        api = Connection.get("events_api")
        url = commands.base_url(api.conn_type, api.host, api.port, api.schema)
        results = runner.run(commands.extract(SOURCE, days["start"], days["end"], url, api.password or None))
        return {**days, "rows": sum(int(r.get("rows", 0)) for r in results)}

    @task(pool="warehouse", outlets=[RAW_EVENTS])
    def load(extracted: dict[str, Any]) -> dict[str, Any]:
        results = runner.run(commands.load(SOURCE, extracted["start"], extracted["end"]))
        return {
            "start": extracted["start"],
            "end": extracted["end"],
            **{key: sum(int(r[key]) for r in results) for key in ("rows_in", "loaded", "quarantined")},
        }

    @task_group
    def ingest_days(days: dict[str, str]) -> Any:
        return load(extract(days))

    @task(pool="warehouse", execution_timeout=dt.timedelta(minutes=10))
    def check_source_freshness() -> dict[str, Any]:
        """Refuse to build on stale raw data: dbt warns past 26 hours and fails past 50."""
        runner.run(commands.dbt("source", "freshness"))
        return {"status": "fresh"}

    @task(pool="warehouse", outlets=[ANALYTICS], execution_timeout=dt.timedelta(hours=1))
    def dbt_build() -> dict[str, Any]:
        """Build and test every model; a failing test stops everything downstream of it.

        Unit tests check the SQL against fixtures, not the data: CI runs them
        (docs/adr/0009), and a production build skips them.
        """
        runner.run(commands.dbt("build", "--exclude-resource-type", "unit_test"))
        return {"status": "success"}

    @task(retries=1)
    def publish_dashboard() -> dict[str, Any]:
        return runner.run(commands.publish_dashboard())[-1]

    loaded = ingest_days.expand(days=plan_days())
    loaded >> check_source_freshness() >> dbt_build() >> publish_dashboard()


events_elt_daily()
