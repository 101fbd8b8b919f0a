"""A PostgreSQL table as a source (issue 22), against the PostgreSQL server the tests already use.

Rows changed on a day land in that day; an extract reads every day in one
snapshot, pages by key, starts `lookback_days` early for late commits, and
moves the watermark only once every day is committed. Inserts, updates and
soft deletes between runs reach the raw table as new versions.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from pathlib import Path

import duckdb
import psycopg
import pytest
from click.testing import CliRunner

from conftest import team_config
from extract_load.cli import main
from extract_load.intervals import Interval
from extract_load.landing.bucket import LocalBucket
from extract_load.landing.leases import Lease
from extract_load.landing.manifest import partition_prefix
from extract_load.sources.postgres import read_watermark

CONTRACT = """\
name: shop_orders
time_column: updated_at
primary_key: [order_id]
columns:
  - {name: order_id, type: integer, required: true}
  - {name: updated_at, type: timestamp, required: true}
  - {name: user_id, type: string, required: true, personal: true}
  - {name: status, type: string, required: true, accepted_values: [placed, paid, refunded]}
  - {name: amount, type: number, required: true, minimum: 0}
  - {name: deleted_at, type: timestamp}
"""


@pytest.fixture
def database(scratch_database: str) -> str:
    with psycopg.connect(scratch_database, autocommit=True) as con:
        con.execute("create schema shop")
        con.execute(
            "create table shop.orders (order_id int primary key, updated_at timestamptz not null,"
            " user_id text not null, status text not null, amount numeric(12, 2) not null,"
            " deleted_at timestamptz)"
        )
    return scratch_database


@pytest.fixture
def configured(database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    sources = team_config(
        tmp_path / "config",
        "sources:\n  shop_orders:\n    kind: postgres\n    dsn_env: SHOP_DATABASE_URL\n"
        "    table: shop.orders\n    contract: shop_orders\n    lookback_days: 1\n    page_size: 2\n",
        {"shop_orders": CONTRACT},
    )
    # A password in the URL (the server trusts this machine and ignores it): it must never be printed.
    password = secrets.token_hex(6)
    dsn = database.replace("postgresql://postgres@", f"postgresql://postgres:{password}@")
    monkeypatch.setenv("SOURCES_FILE", str(sources))
    monkeypatch.setenv("SHOP_DATABASE_URL", dsn)
    return {
        "dsn": dsn,
        "password": password,
        "bucket": str(tmp_path / "bucket"),
        "db": str(tmp_path / "w.duckdb"),
    }


def _write(dsn: str, statements: list[str]) -> None:
    with psycopg.connect(dsn, autocommit=True) as con:
        for statement in statements:
            con.execute(statement)


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def _extract(config: dict[str, str], *args: str) -> list[dict]:
    result = CliRunner().invoke(
        main, ["extract", "--source", "shop_orders", "--bucket", config["bucket"], *args]
    )
    assert result.exit_code == 0, result.output
    assert config["password"] not in result.output
    return _lines(result.stdout)


def _load(config: dict[str, str], start: str, end: str) -> list[dict]:
    result = CliRunner().invoke(
        main,
        ["load", "--source", "shop_orders", "--start", start, "--end", end, "--bucket", config["bucket"],
         "--warehouse", config["db"], "--max-quarantine-ratio", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return _lines(result.stdout)


def _latest(db: str) -> dict[int, tuple[str, str, str | None]]:
    """What staging would keep: each key's newest version."""
    with duckdb.connect(db, read_only=True) as con:
        rows = con.execute(
            "select order_id, status, amount, deleted_at from raw.shop_orders"
            " qualify row_number() over (partition by order_id order by _event_time_local desc) = 1"
        ).fetchall()
    return {int(k): (s, a, d) for k, s, a, d in rows}


def test_changes_between_runs_reach_the_raw_table_as_new_versions(configured: dict[str, str]) -> None:
    dsn = configured["dsn"]
    _write(dsn, [
        "insert into shop.orders values (1, '2025-03-04 10:00+08', 'u_1', 'placed', 10.50, null),"
        " (2, '2025-03-05 09:00+08', 'u_2', 'paid', 20, null),"
        " (3, '2025-03-05 23:59:59+08', 'u_3', 'paid', 5, null),"
        " (4, '2025-03-05 16:00:00+00', 'u_4', 'placed', 7, null),"
        " (5, '2025-03-05 12:00+08', 'u_5', 'lost', 1, null)",
    ])  # fmt: skip
    first = _extract(configured, "--start", "2025-03-05", "--end", "2025-03-06")
    # lookback_days: 1 lands 03-04 again; (4) is 2025-03-06 00:00 local, outside both days.
    assert [(d["interval_start"], d["rows"]) for d in first[:-1]] == [("2025-03-04", 1), ("2025-03-05", 3)]
    assert first[-1]["watermark"] == "2025-03-06"
    loaded = _load(configured, "2025-03-04", "2025-03-06")
    assert [(d["loaded"], d["quarantined"]) for d in loaded] == [(1, 0), (2, 1)]
    assert loaded[1]["reasons"] == {"unknown_status": 1}
    assert _latest(configured["db"])[1] == ("placed", "10.50", None)  # numeric kept exactly, as text

    # Between runs: an update, a soft delete and an insert, all on 03-06 (local).
    _write(dsn, [
        "update shop.orders set status = 'refunded', updated_at = '2025-03-06 08:00+08' where order_id = 2",
        "update shop.orders set deleted_at = '2025-03-06 09:00+08', updated_at = '2025-03-06 09:00+08'"
        " where order_id = 3",
        "insert into shop.orders values (6, '2025-03-06 10:00+08', 'u_6', 'placed', 3, null)",
    ])  # fmt: skip
    second = _extract(configured, "--start", "2025-03-06", "--end", "2025-03-07")
    assert [(d["interval_start"], d["rows"]) for d in second[:-1]] == [("2025-03-05", 1), ("2025-03-06", 4)]
    _load(configured, "2025-03-05", "2025-03-07")
    latest = _latest(configured["db"])
    assert latest[2][0] == "refunded" and latest[3][2] is not None and latest[6][0] == "placed"
    assert set(latest) == {1, 2, 3, 4, 6}  # 5 is quarantined; each key once at its newest version
    # Reloading any day leaves every table as it was (the landing is the same).
    with duckdb.connect(configured["db"], read_only=True) as con:
        before = con.execute("select * from raw.shop_orders order by all").fetchall()
    _load(configured, "2025-03-04", "2025-03-07")
    with duckdb.connect(configured["db"], read_only=True) as con:
        assert con.execute("select * from raw.shop_orders order by all").fetchall() == before


def test_without_start_a_run_continues_from_the_watermark(configured: dict[str, str]) -> None:
    dsn, bucket = configured["dsn"], LocalBucket(Path(configured["bucket"]))
    _write(dsn, ["insert into shop.orders values (1, now() - interval '1 day', 'u_1', 'placed', 1, null)"])
    first = _extract(configured)  # no watermark yet: today, and the day before it
    mark = first[-1]["watermark"]  # tomorrow: today is landed, but not over
    assert [d["rows"] for d in first[:-1]] == [1, 0]
    _write(dsn, ["insert into shop.orders values (2, now(), 'u_2', 'placed', 2, null)"])
    second = _extract(configured)
    assert second[-1]["watermark"] == mark  # today again, whole
    assert sum(d["rows"] for d in second[:-1]) == 2
    watermark = read_watermark(bucket, "shop_orders")
    assert watermark is not None and watermark.next_day.isoformat() == mark


def test_today_is_the_sources_day_whatever_the_hour_in_utc(
    configured: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """For part of every UTC day the source's date is not UTC's. The offset is chosen so that it
    differs now, whenever the test runs: the run must land the source's today, not UTC's."""
    import extract_load.sources.postgres as postgres_source

    now = dt.datetime.now(dt.UTC)
    offset = 14 if now.hour >= 10 else -12  # local midnight lies between UTC's and now
    monkeypatch.setattr(postgres_source, "SOURCE_UTC_OFFSET_HOURS", offset)
    local_today = (now + dt.timedelta(hours=offset)).date()
    assert local_today != now.date()
    first = _extract(configured)
    assert first[-1]["watermark"] == (local_today + dt.timedelta(days=1)).isoformat()
    assert [d["interval_start"] for d in first[:-1]][-1] == local_today.isoformat()


def test_the_watermark_moves_only_after_every_day_is_committed(
    configured: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn, bucket = configured["dsn"], LocalBucket(Path(configured["bucket"]))
    _write(dsn, ["insert into shop.orders values (1, '2025-03-05 10:00+08', 'u_1', 'placed', 1, null)"])
    _extract(configured, "--start", "2025-03-05")
    assert read_watermark(bucket, "shop_orders").next_day.isoformat() == "2025-03-06"  # type: ignore[union-attr]
    # Another writer holds 03-07: the run lands 03-06, cannot commit 03-07, and leaves the mark alone.
    monkeypatch.setenv("EXTRACT_LOAD_LEASE_SECONDS", "0.2")
    day = Interval.parse("2025-03-07")
    with Lease(bucket, partition_prefix("shop_orders", day), ttl=30):
        result = CliRunner().invoke(
            main,
            ["extract", "--source", "shop_orders", "--bucket", configured["bucket"], "--start", "2025-03-07"],
        )
    assert result.exit_code == 4, result.output
    assert read_watermark(bucket, "shop_orders").next_day.isoformat() == "2025-03-06"  # type: ignore[union-attr]


def test_a_database_that_cannot_be_reached_is_the_source_unavailable_exit_code(
    configured: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    unreachable = configured["dsn"].replace("@127.0.0.1:5432/", "@127.0.0.1:1/")
    assert unreachable != configured["dsn"]
    monkeypatch.setenv("SHOP_DATABASE_URL", unreachable)
    result = CliRunner().invoke(
        main,
        ["extract", "--source", "shop_orders", "--bucket", configured["bucket"], "--start", "2025-03-05"],
    )
    assert result.exit_code == 6, result.output
    assert configured["password"] not in result.output


def test_sources_check_reaches_the_table_and_names_a_missing_one(configured: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["sources", "check", "shop_orders"])
    assert result.exit_code == 0, result.output
    assert _lines(result.stdout)[0]["ok"] is True and configured["password"] not in result.output
    _write(configured["dsn"], ["drop table shop.orders"])
    result = CliRunner().invoke(main, ["sources", "check", "shop_orders"])
    assert result.exit_code == 1 and "orders" in _lines(result.stdout)[0]["error"]


def test_the_raw_tables_ddl_for_postgresql_is_rendered_from_the_contract_and_runs(
    configured: dict[str, str], database: str
) -> None:
    """`sources ddl --dialect postgres`: a PostgreSQL-compatible warehouse gets the same tables (issue 22)."""
    result = CliRunner().invoke(main, ["sources", "ddl", "shop_orders", "--dialect", "postgres"])
    assert result.exit_code == 0, result.output
    with psycopg.connect(database, autocommit=True) as con:
        for _ in range(2):  # twice: it is idempotent, as a deploy step must be
            con.execute(result.stdout)
        columns = [
            row[0]
            for row in con.execute(
                "select column_name from information_schema.columns"
                " where table_schema = 'raw' and table_name = 'shop_orders' order by ordinal_position"
            ).fetchall()
        ]
    assert columns[:6] == ["order_id", "updated_at", "user_id", "status", "amount", "deleted_at"]
    assert columns[6:] == [
        "_event_time_local",
        "_record",
        "_interval_start",
        "_source_file",
        "_load_id",
        "_loaded_at",
    ]
