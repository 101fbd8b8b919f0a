"""`warehouse-snapshot`: what BI tools read stays readable, and right, while dbt holds the warehouse.

DuckDB lets no other process open a file while one writes it. These tests hold
the build's file open for writing in another process (as a running `dbt build`
does) and check that the snapshot is still read, that it equals the build
table for table, and that a publish that cannot finish leaves the previous
snapshot served whole.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from conftest import Built
from warehouses.snapshot import main, publish

HOLD_WRITE_LOCK = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("create or replace table main.holding_the_lock as select 1 as n")
print("locked", flush=True)
time.sleep(600)
"""


@contextmanager
def writing(db: Path) -> Iterator[None]:
    """Another process holds `db` open for writing (a dbt build in progress)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE_LOCK, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.kill()
        holder.wait(timeout=30)


def analytics_tables(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every analytics table's rows, sorted: what a reader of `db` would see."""
    with duckdb.connect(str(db), read_only=True) as con:
        names = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables"
                " where table_schema = 'analytics' order by table_name"
            ).fetchall()
        ]
        return {
            name: sorted(con.execute(f"select * from analytics.{name}").fetchall(), key=repr)
            for name in names
        }


@pytest.fixture
def build(built_warehouse: Built, tmp_path: Path) -> Path:
    """A copy of the built warehouse this test may lock and change."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(built_warehouse.db, copy)
    return copy


def test_the_snapshot_equals_the_build_and_is_read_while_dbt_writes(build: Path, tmp_path: Path) -> None:
    target = tmp_path / "readers" / "warehouse-readers.duckdb"
    published = publish(build, target)
    expected = analytics_tables(build)
    assert len(expected) >= 8 and set(published.tables) == {f"analytics.{name}" for name in expected}
    assert analytics_tables(target) == expected
    assert sum(published.tables.values()) == sum(len(rows) for rows in expected.values())
    with writing(build):
        # The build's file cannot be opened by anyone else now; that is the whole point.
        with pytest.raises(duckdb.IOException, match=r"(?i)lock"):
            duckdb.connect(str(build), read_only=True)
        assert analytics_tables(target) == expected
    # Only the published file is left: no partial copy, no WAL.
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def test_a_publish_that_cannot_finish_leaves_the_previous_snapshot_whole(build: Path, tmp_path: Path) -> None:
    target = tmp_path / "warehouse-readers.duckdb"
    publish(build, target)
    before = analytics_tables(target)
    inode = target.stat().st_ino
    # dbt is still writing: the copy waits, then gives up naming the lock; the old snapshot stays.
    with writing(build), pytest.raises(SystemExit, match="locked by another process"):
        publish(build, target, lock_timeout=1.0)
    # A schema the build does not have: refused before anything is replaced.
    with pytest.raises(SystemExit, match="no table in schema nowhere"):
        publish(build, target, schemas=("analytics", "nowhere"))
    assert target.stat().st_ino == inode and analytics_tables(target) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_reader_keeps_the_snapshot_it_opened_and_the_next_one_sees_the_new_build(
    build: Path, tmp_path: Path
) -> None:
    target = tmp_path / "warehouse-readers.duckdb"
    publish(build, target)
    with duckdb.connect(str(build)) as con:
        last_day = "(select max(period_start) from analytics.user_activity_daily)"
        con.execute(f"delete from analytics.user_activity_daily where period_start = {last_day}")
        remaining = con.execute("select count(*) from analytics.user_activity_daily").fetchone()
    assert remaining is not None
    with duckdb.connect(str(target), read_only=True) as reading:
        count = "select count(*) from analytics.user_activity_daily"
        old = reading.execute(count).fetchone()
        publish(build, target)
        # The open connection still reads the file it opened: one state, never a mix.
        assert reading.execute(count).fetchone() == old
    with duckdb.connect(str(target), read_only=True) as fresh:
        assert fresh.execute(count).fetchone() == remaining
    assert old is not None and old[0] == remaining[0] + 1


def test_the_command_is_configured_by_the_environment_and_idle_where_readers_need_no_copy(
    build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "warehouse-readers.duckdb"
    main([], env={"DBT_TARGET": "bigquery", "WAREHOUSE_SNAPSHOT_PATH": str(target)})
    assert "not needed: bigquery" in capsys.readouterr().out and not target.exists()
    main([], env={"DBT_TARGET": "duckdb", "DBT_DUCKDB_PATH": str(build)})
    assert "WAREHOUSE_SNAPSHOT_PATH is not set" in capsys.readouterr().out and not target.exists()
    env = {
        **os.environ,
        "DBT_TARGET": "duckdb",
        "DBT_DUCKDB_PATH": str(build),
        "WAREHOUSE_SNAPSHOT_PATH": str(target),
    }
    done = subprocess.run(
        [str(Path(sys.executable).with_name("warehouse-snapshot"))], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["snapshot"] == str(target)
    assert analytics_tables(target) == analytics_tables(build)
