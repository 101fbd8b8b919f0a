"""The same project on PostgreSQL: the whole build, the unit tests, and the
same numbers as DuckDB for every analytics table (the SQL is portable)."""

from __future__ import annotations

import datetime as dt
import json

from conftest import BUILD, RAW_DDL, Built, connect_postgres, fixture_rows, postgres_env, query

ANALYTICS = {
    "user_activity_daily": "period_start",
    "growth_accounting_daily": "period_start",
    "growth_accounting_weekly": "period_start",
    "growth_accounting_monthly": "period_start",
    "retention_cohorts_weekly": "cohort_start, periods_since",
    "retention_cohorts_monthly": "cohort_start, periods_since",
    "miles_economy": "period_grain, period_start, transaction_category",
    "engagement_by_segment": "period_start, segment_type, segment_value",
    "activity_by_segment_daily": "period_start, platform, country, acquisition_utm_source",
}


def _normalise(rows: list[tuple]) -> list[tuple]:
    """Row values compared across warehouses: floats to 9 digits, dates as dates."""
    out = []
    for row in rows:
        values = []
        for value in row:
            if isinstance(value, float):
                value = round(value, 9)
            elif isinstance(value, dt.datetime):
                value = value.date() if value.time() == dt.time() else value
            elif hasattr(value, "is_integer") and not isinstance(value, int):  # Decimal
                value = round(float(value), 9)
            values.append(value)
        out.append(tuple(values))
    return out


def test_the_project_builds_on_postgres_with_the_same_numbers_as_duckdb(
    postgres_database: str, built_warehouse: Built, dbt
) -> None:
    rows = fixture_rows()
    with connect_postgres(postgres_database) as con, con.cursor() as cur:
        cur.execute(RAW_DDL)  # the loader's contract, the same DDL as on DuckDB
        for row in rows:
            local = dt.datetime.fromisoformat(row["event_time"])
            cur.execute(
                "insert into raw.events values "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'fixture', 'fixture', %s)",
                [*row.values(), local, json.dumps(row), local.date(), dt.datetime(2025, 3, 1)],
            )
    postgres = {"DBT_POSTGRES_DATABASE": postgres_database}
    built = dbt(*BUILD, target="postgres", extra_env=postgres)
    assert built.returncode == 0, built.stdout[-4000:]
    assert dbt("test", "--select", "test_type:unit", target="postgres", extra_env=postgres).returncode == 0
    incremental = dbt(*BUILD, target="postgres", extra_env=postgres)
    assert incremental.returncode == 0, incremental.stdout[-4000:]

    warehouse = built_warehouse.db  # the same fixture rows, built on DuckDB
    with connect_postgres(postgres_database) as con, con.cursor() as cur:
        for model, order in ANALYTICS.items():
            # The digests are hashes each warehouse computes with its own function.
            columns = [
                c[0] for c in query(warehouse, f"describe analytics.{model}") if c[0] != "loads_digest"
            ]
            select = f"select {', '.join(columns)} from analytics.{model} order by {order}"
            cur.execute(select)
            on_postgres = _normalise(cur.fetchall())
            on_duckdb = _normalise(query(warehouse, select))
            assert on_postgres, f"{model} is empty on PostgreSQL"
            assert on_postgres == on_duckdb, f"{model} differs between PostgreSQL and DuckDB"

    # The shared readers (issue 24): the dashboard from PostgreSQL is the one from DuckDB.
    from dashboard.publish import render
    from dashboard.warehouse import read_snapshot
    from warehouses.duckdb import DuckDBWarehouse
    from warehouses.postgres import PostgresWarehouse

    on_postgres = PostgresWarehouse.from_environment(postgres_env(postgres_database))
    snapshot = read_snapshot(on_postgres)
    reference = read_snapshot(DuckDBWarehouse(warehouse))
    for table in ("fct_events", "dim_users", "growth_accounting_weekly", "engagement_by_segment"):
        assert snapshot.layer_rows[table] == reference.layer_rows[table], table
    assert render(snapshot, "2025-03-09 06:00 UTC") == render(reference, "2025-03-09 06:00 UTC")
    reading = on_postgres.read(dt.datetime(2025, 6, 1, tzinfo=dt.UTC))
    assert reading.newest_event is not None and reading.size_bytes > 0
