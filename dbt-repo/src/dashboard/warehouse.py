"""Reading the analytics the dashboard shows, from whichever warehouse dbt built.

The dashboard reads only modelled tables (core and analytics), never raw, so
what it shows has passed the same tests that gate the dbt build. It reads
through the shared readers (`warehouses`): the same SQL on DuckDB, PostgreSQL
and BigQuery, rows per layer from each warehouse's cheapest source (BigQuery's
table metadata, not a scan).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from warehouses import LAYER_TABLES, Warehouse

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


TOTALS_SQL = """
select
    count(*) as events,
    count(distinct user_id) as users,
    min(event_date) as first_day,
    max(event_date) as last_day,
    coalesce(sum(miles_earned), 0) as miles_earned,
    coalesce(sum(miles_redeemed), 0) as miles_redeemed
from core.fct_events
"""


def read_snapshot(warehouse: Warehouse, now: dt.datetime | None = None) -> Snapshot:
    """Every number on the page, read over one connection (one state of a DuckDB file)."""
    with warehouse.session() as session:
        return _read(session, now or dt.datetime.now(dt.UTC))


def _read(warehouse: Warehouse, now: dt.datetime) -> Snapshot:
    reading = warehouse.read(now)
    layer_rows = {
        label: reading.rows[table] for table, label in LAYER_TABLES.items() if table in reading.rows
    }
    totals = warehouse.query(TOTALS_SQL)[0]
    activity = warehouse.query("select * from analytics.user_activity_daily order by period_start")
    growth = {
        grain: warehouse.query(f"select * from analytics.growth_accounting_{grain} order by period_start")
        for grain in GRAINS
    }
    retention = {
        grain: warehouse.query(
            f"select * from analytics.retention_cohorts_{grain} order by cohort_start, periods_since"
        )
        for grain in ("weekly", "monthly")
    }
    miles = warehouse.query(
        "select * from analytics.miles_economy order by period_grain, period_start, transaction_category"
    )
    segments = warehouse.query(
        "select * from analytics.engagement_by_segment order by segment_type, segment_value, period_start"
    )
    return Snapshot(totals, activity, growth, retention, miles, segments, layer_rows)
