"""The warehouse dbt built, read: one interface for everything that reads the modelled tables.

The dashboard publisher and the data-health exporter read the same tables
from whichever warehouse dbt's target names: a DuckDB file locally,
PostgreSQL, BigQuery in clusters. Each states its SQL once, in what the three
share (plain selects, aggregates, `layer.table` names: dbt's schemas are named
for their layer in every warehouse), with values only as named parameters
written `@name` (BigQuery's form; each warehouse binds them its own way), so
no value is ever spliced into SQL. What differs (metadata, sizes, billing caps)
lives in each warehouse's module.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

# Every table the readers report on, and the short name the dashboard shows it by.
LAYER_TABLES = {
    "raw.events": "raw",
    "raw.events_quarantine": "quarantine",
    "staging.stg_events": "staging",
    "core.fct_events": "fct_events",
    "core.fct_user_days": "fct_user_days",
    "core.dim_users": "dim_users",
    "analytics.user_activity_daily": "user_activity_daily",
    "analytics.growth_accounting_daily": "growth_accounting_daily",
    "analytics.growth_accounting_weekly": "growth_accounting_weekly",
    "analytics.growth_accounting_monthly": "growth_accounting_monthly",
    "analytics.retention_cohorts_weekly": "retention_cohorts_weekly",
    "analytics.retention_cohorts_monthly": "retention_cohorts_monthly",
    "analytics.miles_economy": "miles_economy",
    "analytics.engagement_by_segment": "engagement_by_segment",
    "analytics.activity_by_segment_daily": "activity_by_segment_daily",
}
FRESHNESS_TABLE = "core.fct_events"
# The newest believable event (BigQuery narrows it to one partition first: warehouses.bigquery).
NEWEST_EVENT_SQL = (
    f"select max(event_time_utc) as newest from {FRESHNESS_TABLE} where event_time_utc <= @not_after"
)
TARGETS = ("duckdb", "postgres", "bigquery", "snowflake")


@dataclass(eq=False)
class WarehouseReading:
    newest_event: dt.datetime | None
    rows: dict[str, int]  # by table (LAYER_TABLES' keys), for the tables that exist
    size_bytes: int


class Warehouse(Protocol):
    target: str

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows as dicts; `@name` placeholders bound from `parameters`."""
        ...

    def read(self, now: dt.datetime) -> WarehouseReading:
        """Freshness, rows per table and size, as cheaply as the warehouse allows."""
        ...

    def session(self) -> AbstractContextManager[Warehouse]:
        """The same reader over one connection, for a group of reads (a dashboard's snapshot):
        one connect instead of one per query and, where the warehouse allows, one state read."""
        ...


def not_after(now: dt.datetime) -> dt.datetime:
    """The newest event time believed: a day of clock skew, no more. Naive UTC, as the tables store it.
    One device with a bad clock must not make stale data look fresh."""
    return (now + dt.timedelta(days=1)).astimezone(dt.UTC).replace(tzinfo=None)


def from_environment(target: str | None = None, env: Mapping[str, str] | None = None) -> Warehouse:
    """The warehouse dbt's target names, configured by the same variables as profiles.yml."""
    import os

    env = os.environ if env is None else env
    target = target or env.get("DBT_TARGET", "duckdb")
    if target == "bigquery":
        from warehouses.bigquery import BigQueryWarehouse

        return BigQueryWarehouse.from_environment(env)
    if target == "postgres":
        from warehouses.postgres import PostgresWarehouse

        return PostgresWarehouse.from_environment(env)
    if target == "snowflake":
        from warehouses.snowflake import SnowflakeWarehouse

        return SnowflakeWarehouse.from_environment(env)
    if target == "duckdb":
        from warehouses.duckdb import DuckDBWarehouse

        return DuckDBWarehouse.from_environment(env)
    raise SystemExit(f"DBT_TARGET={target!r}: expected one of {', '.join(TARGETS)}")
