"""The same project on Snowflake, against its emulator (fakesnow's server over HTTP, key-pair auth):
the whole build, incremental runs and a re-delivered day included, and the same numbers as DuckDB
for every analytics table.

What the emulator cannot show, a real account must: Snowflake's own planner
and types (fakesnow runs the SQL on DuckDB), clustering, and the comments
`persist_docs` writes (fakesnow cannot parse a comment holding a quote, so
this build turns them off).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import snowflake.connector
from test_dbt_postgres import ANALYTICS, _normalise

from conftest import BIN, BUILD, PROJECT_DIR, fixture_rows, insert_raw, query, raw_row

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "fakesnow"))
from emulator import Emulator, throwaway_private_key

# The raw tables as scripts-repo's loader creates them on Snowflake (load/raw_tables.py: snowflake_ddl).
RAW_DDL = [
    "create schema if not exists raw",
    """create table raw.events (
    event_time varchar, user_id varchar, event_type varchar, transaction_category varchar,
    miles_amount varchar, platform varchar, utm_source varchar, country varchar, gender varchar,
    _event_time_local timestamp_ntz not null, _record variant not null, _interval_start date not null,
    _source_file varchar not null, _load_id varchar not null, _loaded_at timestamp_ntz not null
)""",
    """create table raw.events_quarantine (
    _record varchar not null, reason varchar not null, _interval_start date not null,
    _source_file varchar not null, _load_id varchar not null, _loaded_at timestamp_ntz not null
)""",
]
EMULATOR_BUILD = (*BUILD, "--vars", "{persist_docs: false}")


def deliver(cursor, rows: list[dict], loaded_at: dt.datetime) -> None:
    """As the loader does (and conftest.insert_raw on DuckDB): each day the rows touch is replaced whole."""
    days = sorted({dt.datetime.fromisoformat(r["event_time"]).date() for r in rows})
    listed = ", ".join(f"'{day}'" for day in days)
    cursor.execute(f"delete from raw.events where _interval_start in ({listed})")
    cursor.execute(
        "create or replace temporary table delivery (event_time varchar, user_id varchar, event_type varchar,"
        " transaction_category varchar, miles_amount varchar, platform varchar, utm_source varchar,"
        " country varchar, gender varchar, record varchar)"
    )
    cursor.executemany(
        "insert into delivery values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [[*row.values(), json.dumps(row)] for row in rows],
    )
    cursor.execute(
        "insert into raw.events select event_time, user_id, event_type, transaction_category, miles_amount,"
        " platform, utm_source, country, gender, event_time::timestamp_ntz, parse_json(record),"
        " event_time::timestamp_ntz::date, 'fixture',"
        f" (event_time::timestamp_ntz::date)::varchar || '@{loaded_at.isoformat()}',"
        f" '{loaded_at.isoformat(sep=' ')}'::timestamp_ntz from delivery"
    )


def test_the_project_builds_on_snowflake_with_the_same_numbers_as_duckdb(
    warehouse: Path, dbt, tmp_path: Path
) -> None:
    rows = fixture_rows()
    first, redelivered = dt.datetime(2025, 3, 1), dt.datetime(2025, 3, 2)
    # A day delivered again later with one more event: every table must equal a full rebuild.
    late = [raw_row(dt.datetime(2025, 1, 8, 12), "u_late", 1)]
    day_rows = [r for r in rows if r["event_time"].startswith("2025-01-08")]
    with Emulator(log=tmp_path / "emulator.log") as emulator:
        key = throwaway_private_key(tmp_path / "dbt.p8")
        env = {
            "DBT_SNOWFLAKE_ACCOUNT": "acme",
            "DBT_SNOWFLAKE_USER": "dbt",
            # Not ANALYTICS: the emulator (DuckDB) cannot tell a database from a schema of the same name.
            # A name no public file may show (the docs replace it): as an account's database would be.
            "DBT_SNOWFLAKE_DATABASE": "ACME_PROD_4711",
            "DBT_SNOWFLAKE_PRIVATE_KEY": key.read_text(),  # as the dbt Secret delivers it
            **emulator.environ("DBT_SNOWFLAKE_"),
        }
        with snowflake.connector.connect(
            account="acme", user="admin", authenticator="SNOWFLAKE_JWT", private_key_file=str(key),
            **emulator.connect_args(),
        ) as con:  # fmt: skip
            cursor = con.cursor()
            cursor.execute("create database acme_prod_4711")
            cursor.execute("use database acme_prod_4711")
            for statement in RAW_DDL:
                cursor.execute(statement)
            deliver(cursor, rows, first)

            built = dbt(*EMULATOR_BUILD, target="snowflake", extra_env=env)
            assert built.returncode == 0, built.stdout[-4000:]
            unchanged = dbt(*EMULATOR_BUILD, target="snowflake", extra_env=env)
            assert unchanged.returncode == 0, unchanged.stdout[-4000:]

            deliver(cursor, day_rows + late, redelivered)
            incremental = dbt(*EMULATOR_BUILD, target="snowflake", extra_env=env)
            assert incremental.returncode == 0, incremental.stdout[-4000:]

            # DuckDB, built from scratch on the same deliveries: what every table must now hold.
            insert_raw(warehouse, rows, first)
            with duckdb.connect(str(warehouse)) as duck:
                duck.execute("delete from raw.events where _interval_start = date '2025-01-08'")
            insert_raw(warehouse, day_rows + late, redelivered)
            reference = dbt(*BUILD, extra_env={})
            assert reference.returncode == 0, reference.stdout[-4000:]

            for model, order in {
                **ANALYTICS,
                "dim_users": "user_id",
                "fct_user_days": "user_id, activity_date",
            }.items():
                schema = "core" if model in ("dim_users", "fct_user_days", "fct_events") else "analytics"
                columns = [
                    c[0] for c in query(warehouse, f"describe {schema}.{model}")
                    if c[0] not in ("loads_digest", "_built_at")  # a hash per warehouse; when it ran
                ]  # fmt: skip
                select = f"select {', '.join(columns)} from {schema}.{model} order by {order}"
                on_snowflake = _normalise([tuple(row) for row in cursor.execute(select).fetchall()])
                on_duckdb = _normalise(query(warehouse, select))
                assert on_snowflake, f"{model} is empty on Snowflake"
                assert on_snowflake == on_duckdb, f"{model} differs between Snowflake and DuckDB"

            # The shared readers: the dashboard read from Snowflake is the one read from DuckDB.
            from dashboard.publish import render
            from dashboard.warehouse import read_snapshot
            from warehouses import from_environment
            from warehouses.duckdb import DuckDBWarehouse

            on_snowflake = from_environment("snowflake", env)
            snapshot = read_snapshot(on_snowflake)
            reference = read_snapshot(DuckDBWarehouse(warehouse))
            for table in ("fct_events", "dim_users", "growth_accounting_weekly", "engagement_by_segment"):
                assert snapshot.layer_rows[table] == reference.layer_rows[table], table
            assert render(snapshot, "2025-03-09 06:00 UTC") == render(reference, "2025-03-09 06:00 UTC")
            reading = on_snowflake.read(dt.datetime(2025, 6, 1, tzinfo=dt.UTC))
            assert reading.newest_event is not None and reading.rows["core.fct_events"] > 0

            # The docs and the public data published from Snowflake: the same datasets, columns,
            # portable types and rows as from DuckDB (issue 27), and no database name in them.
            published = {}
            for name, target, extra in (
                ("snowflake", "snowflake", env),
                ("duckdb", "duckdb", {"DBT_DUCKDB_PATH": str(warehouse)}),
            ):
                out = tmp_path / name
                publish_env = {
                    **os.environ, **extra, "DBT_TARGET": target, "DBT_LOG_PATH": str(tmp_path / "logs"),
                    "DBT_PROJECT_DIR": str(PROJECT_DIR), "DBT_PROFILES_DIR": str(PROJECT_DIR),
                }  # fmt: skip
                for argv in (
                    [str(BIN / "publish-docs"), "--to", str(out / "docs")],
                    [str(BIN / "publish-data"), "--to", str(out / "data"), "--docs", str(out / "docs")],
                ):
                    done = subprocess.run(argv, env=publish_env, capture_output=True, text=True, check=False)
                    assert done.returncode == 0, (name, done.stderr[-3000:])
                published[name] = json.loads((out / "data" / "v1" / "catalog.json").read_text())
            for on_snowflake_set, on_duckdb_set in zip(
                published["snowflake"]["datasets"], published["duckdb"]["datasets"], strict=True
            ):
                assert on_snowflake_set["name"] == on_duckdb_set["name"]
                portable = [
                    [(c["name"], c["type"]) for c in d["columns"]] for d in (on_snowflake_set, on_duckdb_set)
                ]
                assert portable[0] == portable[1], on_snowflake_set["name"]
                rows = [
                    _normalise(
                        [
                            tuple(r.values())
                            for r in json.loads(
                                (tmp_path / side / "data" / "v1" / d["files"]["json"]["path"]).read_text()
                            )
                        ]
                    )
                    for side, d in (("snowflake", on_snowflake_set), ("duckdb", on_duckdb_set))
                ]
                assert rows[0] == rows[1] and rows[0], on_snowflake_set["name"]
            for path in (tmp_path / "snowflake").rglob("*"):
                assert not path.is_file() or b"ACME_PROD_4711" not in path.read_bytes().upper(), path
