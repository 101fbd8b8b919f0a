"""Reloads reach the end: after any sequence of deliveries and re-deliveries,
an incremental build leaves every core and analytics table equal, row for row,
to a full rebuild of the same raw data (docs/adr/0019).

A property test: each seed draws a random sequence of what sources do to
their past (random_operations). The warehouse starts empty and is built
before any data exists (an incremental model that starts empty must still
fill); then after every operation the incremental `dbt build` (models and
their data tests) runs, and a copy of the warehouse is rebuilt with
`--full-refresh`: the two must hold the same rows in every table. Runs on
DuckDB and on PostgreSQL. REDELIVERY_SEQUENCES and REDELIVERY_STEPS make it
longer (the defaults keep `make test` quick).

dbt runs in this process (dbtRunner): a start-up per invocation would be
most of the time, and the runs are strictly one after another.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import duckdb
import psycopg2
import pytest
from redeliveries import Operation, RawDays, random_operations

from conftest import POSTGRES_SERVER, PROJECT_DIR, RAW_DDL, connect_postgres

SEQUENCES = int(os.environ.get("REDELIVERY_SEQUENCES", "3"))
STEPS = int(os.environ.get("REDELIVERY_STEPS", "6"))

# Every table the project builds: the model files of core and analytics, so a model
# added later is held to the same property without anyone remembering this list.
TABLES = tuple(
    f"{layer}.{path.stem}"
    for layer in ("core", "analytics")
    for path in sorted((PROJECT_DIR / "models" / layer).glob("*.sql"))
)
assert "analytics.engagement_by_segment" in TABLES and "core.fct_events" in TABLES


@contextmanager
def _env(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def dbt_in_process(workdir: Path, **env: str) -> Callable[..., None]:
    """Run dbt here; each caller keeps its own target folder, so partial parsing stays valid."""
    from dbt.cli.main import dbtRunner

    runner = dbtRunner()

    def invoke(*args: str) -> None:
        with _env(
            DBT_TARGET_PATH=str(workdir / "target"),
            DBT_LOG_PATH=str(workdir / "logs"),
            DBT_SEND_ANONYMOUS_USAGE_STATS="False",
            **env,
        ):
            result = runner.invoke(
                [*args, "--quiet", "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
            )
        if not result.success:
            failed = [
                f"{r.node.name}: {r.status} {r.message}"
                for r in getattr(result.result, "results", [])
                if str(r.status) not in ("success", "pass")
            ]
            raise AssertionError(f"dbt {' '.join(args)} failed: {result.exception or failed}")

    return invoke


def normalised(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows, sorted; floats to 12 significant digits (a sum in another order may differ in its last bit)."""

    def value(v: Any) -> Any:
        if isinstance(v, float):
            return float(f"{v:.12g}")
        if hasattr(v, "is_integer") and not isinstance(v, int):  # Decimal
            return float(f"{float(v):.12g}")
        return v

    return sorted((tuple(value(v) for v in row) for row in rows), key=repr)


def differences(
    read: Callable[[str], tuple[list[str], list[tuple]]],
    other: Callable[[str], tuple[list[str], list[tuple]]],
) -> list[str]:
    found = []
    for table in TABLES:
        columns, rows = _without_build_times(*read(table))
        other_columns, other_rows = _without_build_times(*other(table))
        if columns != other_columns:
            found.append(f"{table}: columns {columns} != {other_columns}")
            continue
        ours, theirs = normalised(rows), normalised(other_rows)
        if ours != theirs:
            only_ours = [r for r in ours if r not in theirs][:3]
            only_theirs = [r for r in theirs if r not in ours][:3]
            found.append(
                f"{table}: {len(ours)} rows incremental, {len(theirs)} full; "
                f"only incremental {only_ours}; only full {only_theirs}"
            )
    return found


def _without_build_times(columns: list[str], rows: list[tuple]) -> tuple[list[str], list[tuple]]:
    """`_built_at` says when dbt wrote a row, which a rebuild changes by definition."""
    keep = [i for i, c in enumerate(columns) if c != "_built_at"]
    return [columns[i] for i in keep], [tuple(row[i] for i in keep) for row in rows]


def _duckdb_reader(path: Path) -> Callable[[str], tuple[list[str], list[tuple]]]:
    def read(table: str) -> tuple[list[str], list[tuple]]:
        # Not read-only: dbt-duckdb keeps its database open in this process, and
        # DuckDB shares one instance per file only between identical configurations.
        with duckdb.connect(str(path)) as con:
            result = con.execute(f"select * from {table}")
            return [d[0] for d in result.description], result.fetchall()

    return read


def _postgres_reader(database: str) -> Callable[[str], tuple[list[str], list[tuple]]]:
    def read(table: str) -> tuple[list[str], list[tuple]]:
        with closing(connect_postgres(database)) as con, con.cursor() as cur:
            cur.execute(f"select * from {table}")
            return [d[0] for d in cur.description], cur.fetchall()

    return read


def check_sequence(
    operations: list[Operation],
    raw: RawDays,
    build: Callable[..., None],
    full_rebuild: Callable[[], Callable[[str], tuple[list[str], list[tuple]]]],
    read: Callable[[str], tuple[list[str], list[tuple]]],
    first_steps: int,
) -> int:
    """Apply the operations (the first `first_steps` as one step), building and comparing after each step."""
    steps = [operations[:first_steps]] + [[op] for op in operations[first_steps:]]
    history: list[str] = []
    for step in steps:
        for operation in step:
            raw.replace_day(operation.day, operation.rows)
        history.append("; ".join(op.description for op in step))
        build("build", "--exclude-resource-type", "unit_test")
        found = differences(read, full_rebuild())
        assert not found, "after " + " -> ".join(history) + ":\n" + "\n".join(found)
    return len(steps)


@pytest.mark.parametrize("seed", range(SEQUENCES))
def test_duckdb_incremental_builds_equal_full_rebuilds_after_any_redelivery(
    seed: int, tmp_path: Path
) -> None:
    database = tmp_path / "incremental.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute(RAW_DDL)
    build = dbt_in_process(tmp_path / "incremental", DBT_DUCKDB_PATH=str(database), DBT_TARGET="duckdb")
    build("run")  # before any data: every incremental model starts empty
    copies = iter(range(1000))

    def full_rebuild() -> Callable[[str], tuple[list[str], list[tuple]]]:
        # A new file each time: dbt-duckdb keeps the last one open in this process.
        copy = tmp_path / f"full-{next(copies)}.duckdb"
        with duckdb.connect(str(database)) as con:
            con.execute("checkpoint")
        shutil.copyfile(database, copy)
        dbt_in_process(tmp_path / "full", DBT_DUCKDB_PATH=str(copy), DBT_TARGET="duckdb")(
            "run", "--full-refresh"
        )
        return _duckdb_reader(copy)

    _, operations = random_operations(seed, STEPS)
    raw = RawDays(lambda: duckdb.connect(str(database)))
    steps = check_sequence(
        operations, raw, build, full_rebuild, _duckdb_reader(database), len(operations) - STEPS
    )
    assert steps == STEPS + 1


@pytest.mark.parametrize("seed", range(max(1, SEQUENCES - 1)))
def test_postgres_incremental_builds_equal_full_rebuilds_after_any_redelivery(
    seed: int, postgres_database: str, tmp_path: Path
) -> None:
    with connect_postgres(postgres_database) as con, con.cursor() as cur:
        cur.execute(RAW_DDL)
    copy = f"{postgres_database}_full"
    target = {"DBT_TARGET": "postgres"}
    build = dbt_in_process(tmp_path / "incremental", DBT_POSTGRES_DATABASE=postgres_database, **target)
    rebuild = dbt_in_process(tmp_path / "full", DBT_POSTGRES_DATABASE=copy, **target)
    build("run")

    admin = psycopg2.connect(POSTGRES_SERVER)
    admin.autocommit = True

    def full_rebuild() -> Callable[[str], tuple[list[str], list[tuple]]]:
        with admin.cursor() as cur:
            cur.execute(f'drop database if exists "{copy}" with (force)')
            # A template must have no sessions; dbt may keep its connection between invocations.
            cur.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where datname = %s and pid <> pg_backend_pid()",
                [postgres_database],
            )
            cur.execute(f'create database "{copy}" template "{postgres_database}"')
        rebuild("run", "--full-refresh")
        return _postgres_reader(copy)

    _, operations = random_operations(1000 + seed, STEPS)
    raw = RawDays(lambda: connect_postgres(postgres_database), placeholder="%s")
    try:
        steps = check_sequence(
            operations, raw, build, full_rebuild, _postgres_reader(postgres_database), len(operations) - STEPS
        )
    finally:
        with admin.cursor() as cur:
            cur.execute(f'drop database if exists "{copy}" with (force)')
        admin.close()
    assert steps == STEPS + 1


def test_an_incremental_build_on_an_empty_warehouse_fills_when_data_arrives(tmp_path: Path) -> None:
    """The first build runs before any load (a new environment, a failed first load): later loads arrive."""
    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute(RAW_DDL)
    build = dbt_in_process(tmp_path / "dbt", DBT_DUCKDB_PATH=str(database), DBT_TARGET="duckdb")
    build("build", "--exclude-resource-type", "unit_test")
    read = _duckdb_reader(database)
    assert all(not read(table)[1] for table in TABLES)

    _, operations = random_operations(7, 0, start_days=5)
    raw = RawDays(lambda: duckdb.connect(str(database)))
    for operation in operations[:3]:
        raw.replace_day(operation.day, operation.rows)
    build("build", "--exclude-resource-type", "unit_test")
    for operation in operations[3:]:
        raw.replace_day(operation.day, operation.rows)
    build("build", "--exclude-resource-type", "unit_test")

    delivered = {(op.day, r["user_id"]) for op in operations for r in op.rows}
    assert {(d, u) for u, d, *_ in read("core.fct_user_days")[1]} == delivered
    days = [row[0] for row in read("analytics.user_activity_daily")[1]]
    assert sorted(days) == [operations[0].day + dt.timedelta(days=i) for i in range(5)]
    assert len(read("core.dim_users")[1]) == len({u for _, u in delivered})


def test_a_corrected_day_replaces_its_events_downstream(tmp_path: Path) -> None:
    """The issue's case: a day re-delivered with one event's miles changed and another event removed."""
    database, copy = tmp_path / "incremental.duckdb", tmp_path / "full.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute(RAW_DDL)
    build = dbt_in_process(tmp_path / "dbt", DBT_DUCKDB_PATH=str(database), DBT_TARGET="duckdb")
    _, operations = random_operations(11, 0, start_days=6)
    raw = RawDays(lambda: duckdb.connect(str(database)))
    for operation in operations:
        raw.replace_day(operation.day, operation.rows)
    build("build", "--exclude-resource-type", "unit_test")

    day, rows = operations[2].day, [dict(r) for r in operations[2].rows]
    assert len(rows) >= 2
    rows[0].update(event_type="miles_earned", transaction_category="dining", miles_amount="777.0")
    rows.pop()
    raw.replace_day(day, rows)
    build("build", "--exclude-resource-type", "unit_test")

    read = _duckdb_reader(database)
    columns, events = read("core.fct_events")
    on_day = [dict(zip(columns, e, strict=True)) for e in events if e[columns.index("event_date")] == day]
    key = ("user_id", "event_type", "platform")
    assert sorted(
        (str(e["event_time_local"]), *(e[k] for k in key), e["miles_earned"]) for e in on_day
    ) == sorted(
        {(r["event_time"], *(r[k] for k in key),
          float(r["miles_amount"]) if r["event_type"] == "miles_earned" else None) for r in rows}
    )  # fmt: skip

    with duckdb.connect(str(database)) as con:
        con.execute("checkpoint")
    shutil.copyfile(database, copy)
    dbt_in_process(tmp_path / "full", DBT_DUCKDB_PATH=str(copy), DBT_TARGET="duckdb")("run", "--full-refresh")
    assert differences(read, _duckdb_reader(copy)) == []
