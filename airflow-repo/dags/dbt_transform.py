"""Build the dbt project model by model once new raw data has landed, then publish what it knows.

Scheduled on the raw tables' Assets, which `events_ingest` emits through the
`raw_tables` alias after each load. Cosmos renders the project from its manifest (built with the image, so
parsing this file never runs dbt): a task per source freshness check, a task
group per model that runs it and then its data tests, so a failing test stops
everything downstream of that model and nothing else. The dashboard is
published from the analytics tables at the end and, for a DuckDB warehouse, the
analytics tables are copied to the snapshot BI tools read (DuckDB lets no
other process open a file while dbt writes it: warehouses.snapshot); then the
BI tool's cache is dropped, so no viewer gets the numbers from before. Beside
them the dbt docs are generated from the warehouse and published, then the
analytics tables the project marks public are exported under their
columns and types (the viewer serves both at /docs/ and /data/).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Connection, dag, task
from airflow.sdk.exceptions import AirflowSkipException
from cosmos import DbtTaskGroup

from pipeline_runtime import bi_cache, commands, dbt_project, runner
from pipeline_runtime.assets import ANALYTICS, RAW_TABLES
from pipeline_runtime.defaults import DEFAULT_ARGS
from pipeline_runtime.settings import settings


@dag(
    dag_id="dbt_transform",
    description="Build and test each dbt model (a task group each), then publish the dashboard, BI copy, "
    "docs and public data",
    schedule=[RAW_TABLES],
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "pool": "warehouse"},
    tags=["dbt", "dashboard", "docs"],
    doc_md=__doc__,
)
def dbt_transform() -> None:
    transform = DbtTaskGroup(
        group_id="dbt",
        project_config=dbt_project.project_config(),
        profile_config=dbt_project.profile_config(),
        execution_config=dbt_project.execution_config(),
        render_config=dbt_project.render_config(),
        operator_args=dbt_project.operator_args(),
    )
    dbt_project.wire_watcher(transform)

    @task(outlets=[ANALYTICS], retries=1, pool="default_pool")
    def publish_dashboard() -> dict[str, Any]:
        """Render the dashboard from the analytics tables that just passed their tests."""
        return runner.run(commands.publish_dashboard(dbt_project.image_in_use()))[-1]

    @task(outlets=[ANALYTICS], retries=1, pool="default_pool")
    def publish_warehouse_snapshot() -> dict[str, Any]:
        """Copy the analytics tables BI tools read to where dbt's next build cannot lock them out.
        Only DuckDB locks readers out while it writes: on any other warehouse (BigQuery in
        clusters) the task skips without starting a pod."""
        target = settings().dbt_target
        if target != "duckdb":
            raise AirflowSkipException(f"DBT_TARGET={target}: it serves readers while dbt writes")
        return runner.run(commands.warehouse_snapshot(dbt_project.image_in_use()))[-1]

    # After the snapshot is published (or skipped where there is none), never after it failed:
    # dropping the cache then would only make Superset re-read the same old tables.
    @task(retries=2, pool="default_pool", trigger_rule="none_failed")
    def refresh_bi_cache(conn_id: str) -> dict[str, Any]:
        """Drop the BI tool's cached chart results, so viewers get the tables this run built."""
        if not settings().bi_cache_refresh:
            raise AirflowSkipException(
                "PLATFORM_BI_CACHE_REFRESH is not set: no BI tool reads this environment"
            )
        superset = Connection.get(conn_id)
        return bi_cache.invalidate(
            superset.host or "",
            superset.login or "",
            superset.password or "",
            bi_cache.analytics_tables(dbt_project.manifest_path()),
        )

    # Readers of the warehouse (the `warehouse` pool keeps loads out while they read it).
    @task(retries=1, pool="warehouse")
    def publish_docs() -> dict[str, Any]:
        """Generate the dbt docs from the warehouse this run built and publish the site."""
        return runner.run(commands.publish_docs(dbt_project.image_in_use()))[-1]

    @task(retries=1, pool="warehouse")
    def publish_data() -> dict[str, Any]:
        """Export the public analytics tables, as the docs just published describe them."""
        return runner.run(commands.publish_data(dbt_project.image_in_use()))[-1]

    snapshot = publish_warehouse_snapshot()
    docs = publish_docs()
    transform >> [publish_dashboard(), snapshot, docs]
    docs >> publish_data()
    snapshot >> refresh_bi_cache(conn_id="superset_api")


dbt_transform()
