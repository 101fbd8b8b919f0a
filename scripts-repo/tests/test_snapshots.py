"""Snapshot sources (issue 22): no time column; each run lands the whole of it and replaces the raw table.

A product catalogue or a budget sheet has no event time: its contract says
`time_column: null`. A run lands the snapshot as one day (the day asked for,
or today), and the load makes the raw table that snapshot exactly: rows
added, changed and removed between snapshots are there, changed, and gone.
A reload of an older snapshot changes nothing, so every reload leaves the
table as a full rebuild would.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import psycopg
import pytest
from click.testing import CliRunner

from conftest import team_config
from extract_load.cli import main
from extract_load.contract import parse_contract

CATALOGUE = """\
name: catalogue
time_column: null
primary_key: [sku]
columns:
  - {name: sku, type: string, required: true}
  - {name: title, type: string, required: true}
  - {name: miles_price, type: integer, required: true, minimum: 0}
  - {name: active, type: boolean}
"""


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    sources = team_config(
        tmp_path / "config",
        "sources:\n"
        "  catalogue:\n    kind: file\n    location_env: CATALOGUE_LOCATION\n    contract: catalogue\n"
        "  rewards:\n    kind: postgres\n    dsn_env: REWARDS_DATABASE_URL\n    table: rewards\n"
        "    contract: catalogue\n",
        {"catalogue": CATALOGUE},
    )
    monkeypatch.setenv("SOURCES_FILE", str(sources))
    return tmp_path


def _run(*args: str) -> list[dict]:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def _raw(db: Path, table: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(f"select sku, title, miles_price, active from raw.{table} order by sku").fetchall()


def _snapshot(tmp_path: Path, day: str, csv: str, db: Path) -> list[dict]:
    path = tmp_path / f"catalogue-{day}.csv"
    path.write_text(csv)
    bucket = str(tmp_path / "bucket")
    landed = _run("extract-file", "--source", "catalogue", "--path", str(path), "--bucket", bucket,
                  "--start", day, "--max-quarantine-ratio", "1")  # fmt: skip
    loaded = _run("load", "--source", "catalogue", "--start", day, "--bucket", bucket, "--warehouse", str(db),
                  "--max-quarantine-ratio", "1")  # fmt: skip
    return [*landed, *loaded]


def test_each_snapshot_replaces_the_raw_table_and_an_older_one_never_comes_back(configured: Path) -> None:
    db = configured / "w.duckdb"
    first = _snapshot(
        configured, "2025-03-05",
        "sku,title,miles_price,active\nA,Mug,500,true\nB,Cap,800,true\nC,Bag,-1,true\n",
        db,
    )  # fmt: skip
    assert first[-1]["loaded"] == 2 and first[-1]["reasons"] == {"negative_miles_price": 1}
    assert _raw(db, "catalogue") == [("A", "Mug", "500", "true"), ("B", "Cap", "800", "true")]
    # Between snapshots: B changed, A removed, D added.
    _snapshot(
        configured, "2025-03-06", "sku,title,miles_price,active\nB,Cap,750,false\nD,Pen,90,\n", db
    )  # fmt: skip
    second = _raw(db, "catalogue")
    assert second == [("B", "Cap", "750", "false"), ("D", "Pen", "90", None)]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*) from raw.catalogue_quarantine").fetchone() == (0,)
        columns = [c[0] for c in con.execute("describe raw.catalogue").fetchall()]
    assert "_event_time_local" not in columns
    # Reloading the older snapshot, or both, leaves the table as it is: the newest snapshot.
    bucket = str(configured / "bucket")
    _run("load", "--source", "catalogue", "--start", "2025-03-05", "--bucket", bucket, "--warehouse", str(db),
         "--max-quarantine-ratio", "1")  # fmt: skip
    assert _raw(db, "catalogue") == second
    rebuilt = configured / "rebuilt.duckdb"
    _run("load", "--source", "catalogue", "--start", "2025-03-05", "--end", "2025-03-07", "--bucket", bucket,
         "--warehouse", str(rebuilt), "--max-quarantine-ratio", "1")  # fmt: skip
    assert _raw(rebuilt, "catalogue") == second


def test_a_snapshot_of_a_range_is_the_snapshot_of_its_last_day(configured: Path) -> None:
    """A scheduler's backfill asks for a range; a snapshot can only be of now, so it is the last day's."""
    path = configured / "c.csv"
    path.write_text("sku,title,miles_price\nA,Mug,5\n")
    bucket = str(configured / "b")
    landed = _run("extract-file", "--source", "catalogue", "--path", str(path), "--bucket", bucket,
                  "--start", "2025-03-05", "--end", "2025-03-08")  # fmt: skip
    assert [line["interval_start"] for line in landed if "run_id" in line] == ["2025-03-07"]


@pytest.fixture
def rewards_table(scratch_database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    with psycopg.connect(scratch_database, autocommit=True) as con:
        con.execute("create table rewards (sku text primary key, title text, miles_price int, active bool)")
    monkeypatch.setenv("REWARDS_DATABASE_URL", scratch_database)
    return scratch_database


def test_a_table_without_a_change_time_is_read_as_a_snapshot_and_hard_deletes_show(
    configured: Path, rewards_table: str
) -> None:
    db, bucket = configured / "w.duckdb", str(configured / "bucket")
    with psycopg.connect(rewards_table, autocommit=True) as con:
        con.execute("insert into rewards values ('A', 'Mug', 500, true), ('B', 'Cap', 800, true)")
    for day in ("2025-03-05", "2025-03-06"):
        landed = _run("extract", "--source", "rewards", "--bucket", bucket, "--start", day)
        assert landed[-1]["watermark"] is None and landed[0]["interval_start"] == day
        _run("load", "--source", "rewards", "--start", day, "--bucket", bucket, "--warehouse", str(db))
        if day == "2025-03-05":
            assert _raw(db, "rewards") == [("A", "Mug", "500", "true"), ("B", "Cap", "800", "true")]
            with psycopg.connect(rewards_table, autocommit=True) as con:
                con.execute("delete from rewards where sku = 'A'")  # a hard delete
                con.execute("update rewards set miles_price = 750 where sku = 'B'")
    assert _raw(db, "rewards") == [("B", "Cap", "750", "true")]


def test_a_snapshot_contract_has_no_time_column_and_says_so() -> None:
    contract = parse_contract({"time_column": None, "columns": [{"name": "sku"}]}, "x")
    assert contract.is_snapshot and contract.undatable_reasons == {
        "not_a_json_object", "oversized_record", "broken_line", "non_standard_json"
    }  # fmt: skip
    with pytest.raises(ValueError, match="time_column is required"):
        parse_contract({"columns": [{"name": "sku"}]}, "x")
