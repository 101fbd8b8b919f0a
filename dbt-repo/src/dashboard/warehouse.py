"""Reading the analytics the dashboard shows, from the warehouse dbt built.

The dashboard reads only modelled tables (core and analytics), never raw, so
what it shows has passed the same tests that gate the dbt build.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

GRAINS = ("daily", "weekly", "monthly")


@dataclass
class Snapshot:
    totals: dict[str, Any]
    activity: list[dict[str, Any]]
    growth: dict[str, list[dict[str, Any]]]  # by grain: daily, weekly, monthly
    retention: dict[str, list[dict[str, Any]]]  # weekly, monthly
    miles: list[dict[str, Any]]
    segments: list[dict[str, Any]]
    layer_rows: dict[str, int]

    @property
    def weekly(self) -> list[dict[str, Any]]:
        return self.growth["weekly"]


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
}


def duckdb_path() -> Path:
    value = os.environ.get("DBT_DUCKDB_PATH")
    if not value:
        raise SystemExit("DBT_DUCKDB_PATH is not set: which warehouse should the dashboard read?")
    return Path(value)


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    result = con.execute(sql)
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def read_snapshot(path: Path) -> Snapshot:
    con = duckdb.connect(str(path), read_only=True)
    try:
        layer_rows = {
            label: int(con.execute(f"select count(*) from {table}").fetchone()[0])  # type: ignore[index]
            for table, label in LAYER_TABLES.items()
        }
        totals = _rows(
            con,
            """
            select
                count(*) as events,
                count(distinct user_id) as users,
                min(event_date) as first_day,
                max(event_date) as last_day,
                coalesce(sum(miles_earned), 0) as miles_earned,
                coalesce(sum(miles_redeemed), 0) as miles_redeemed
            from core.fct_events
            """,
        )[0]
        activity = _rows(con, "select * from analytics.user_activity_daily order by period_start")
        growth = {
            grain: _rows(con, f"select * from analytics.growth_accounting_{grain} order by period_start")
            for grain in GRAINS
        }
        retention = {
            grain: _rows(
                con,
                f"select * from analytics.retention_cohorts_{grain} order by cohort_start, periods_since",
            )
            for grain in ("weekly", "monthly")
        }
        miles = _rows(
            con,
            "select * from analytics.miles_economy order by period_grain, period_start, transaction_category",
        )
        segments = _rows(
            con,
            "select * from analytics.engagement_by_segment "
            "order by segment_type, segment_value, period_start",
        )
    finally:
        con.close()
    return Snapshot(totals, activity, growth, retention, miles, segments, layer_rows)
