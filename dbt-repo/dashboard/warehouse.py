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


@dataclass
class Snapshot:
    totals: dict[str, Any]
    weekly: list[dict[str, Any]]
    daily_active: list[dict[str, Any]]
    layer_rows: dict[str, int]


LAYER_TABLES = {
    "raw.events": "raw",
    "raw.events_quarantine": "quarantine",
    "staging.stg_events": "staging",
    "core.fct_events": "fct_events",
    "core.dim_users": "dim_users",
    "analytics.growth_accounting_weekly": "growth_accounting_weekly",
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
        weekly = _rows(con, "select * from analytics.growth_accounting_weekly order by period_start")
        daily_active = _rows(
            con,
            """
            select event_date as day, count(distinct user_id) as active_users
            from core.fct_events group by event_date order by event_date
            """,
        )
    finally:
        con.close()
    return Snapshot(totals, weekly, daily_active, layer_rows)
