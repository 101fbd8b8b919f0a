"""`warehouse-snapshot`: the tables BI tools read, copied into a DuckDB file no build ever locks.

DuckDB allows one writing process per file, and while it writes no other
process can open the file at all, not even read-only. So a BI tool pointed at
the file dbt builds fails with "Conflicting lock is held" for as long as a
build runs. After each build that passed its tests, this copies the schemas
readers query (the analytics layer by default) into a separate file, written
beside it under a temporary name and renamed over the published one: a reader
opens either the previous snapshot or the new one, never a half-written file,
and a query already running keeps the file it opened (the old inode) until it
ends. The snapshot holds only tables that passed their tests, so a failed
build leaves the previous one in place.

BigQuery and PostgreSQL serve readers while dbt writes: there the command has
nothing to do and says so.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb

from warehouses.results import emit

DEFAULT_SCHEMAS = ("analytics",)
SOURCE = "built"  # the alias the build's file is attached under


@dataclass(frozen=True)
class Published:
    path: Path
    tables: dict[str, int]  # schema.table -> rows
    seconds: float


def publish(
    source: Path,
    target: Path,
    schemas: Iterable[str] = DEFAULT_SCHEMAS,
    lock_timeout: float = 0.0,
) -> Published:
    """Copy every table and view of `schemas` in `source` into `target`, replacing it whole.

    Views are materialised: the snapshot must not depend on a file it cannot open.
    `lock_timeout` seconds are spent waiting for a build still holding the file."""
    started = time.monotonic()
    wanted = tuple(dict.fromkeys(schemas))
    if not wanted:
        raise ValueError("no schema to copy")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    try:
        tables: dict[str, int] = {}
        with duckdb.connect(str(partial)) as con:
            _attach_read_only(con, source, lock_timeout)
            listed = con.execute(
                "select table_schema, table_name from information_schema.tables"
                " where table_catalog = ? and list_contains(?, table_schema)"
                " order by table_schema, table_name",
                [SOURCE, list(wanted)],
            ).fetchall()
            missing = sorted(set(wanted) - {schema for schema, _ in listed})
            if missing:
                raise SystemExit(
                    f"{source}: no table in schema {', '.join(missing)}: has dbt built it? "
                    "The previous snapshot stays."
                )
            for schema in wanted:
                con.execute(f"create schema {_quoted(schema)}")
            for schema, table in listed:
                name = f"{_quoted(schema)}.{_quoted(table)}"
                con.execute(f"create table {name} as select * from {SOURCE}.{name}")
                counted = con.execute(f"select count(*) from {name}").fetchone()
                tables[f"{schema}.{table}"] = int(counted[0]) if counted else 0
            con.execute(f"detach {SOURCE}")
            con.execute("checkpoint")
        with partial.open("rb") as written:
            os.fsync(written.fileno())
        os.replace(partial, target)
        _fsync_directory(target.parent)
    finally:
        partial.unlink(missing_ok=True)
        Path(f"{partial}.wal").unlink(missing_ok=True)
    return Published(target, tables, time.monotonic() - started)


def _attach_read_only(con: duckdb.DuckDBPyConnection, source: Path, lock_timeout: float) -> None:
    if not source.exists():
        raise SystemExit(f"{source} does not exist: has dbt built the warehouse?")
    deadline = time.monotonic() + lock_timeout
    while True:
        try:
            con.execute(f"attach {_literal(str(source))} as {SOURCE} (read_only)")
            return
        except duckdb.IOException as error:
            if "lock" not in str(error).lower() or time.monotonic() >= deadline:
                raise SystemExit(
                    f"{source} is locked by another process (a dbt build?): {error}. "
                    "The previous snapshot stays; run again once the build has finished."
                ) from error
            time.sleep(1)


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _fsync_directory(folder: Path) -> None:
    """The rename itself survives a crash only once the folder's entry is on disk."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> None:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].strip("`"))
    parser.add_argument(
        "--to",
        type=Path,
        default=env.get("WAREHOUSE_SNAPSHOT_PATH") or None,
        help="the snapshot file readers open (default: WAREHOUSE_SNAPSHOT_PATH)",
    )
    parser.add_argument("--schema", action="append", help="a schema to copy (repeatable; default analytics)")
    parser.add_argument(
        "--lock-timeout", type=float, default=60.0, help="seconds to wait for a build holding the file"
    )
    args = parser.parse_args(argv)
    target = env.get("DBT_TARGET", "duckdb")
    if target != "duckdb":
        emit({"snapshot": None, "reason": f"not needed: {target} serves readers while dbt writes"}, env)
        return
    if args.to is None:
        emit(
            {"snapshot": None, "reason": "WAREHOUSE_SNAPSHOT_PATH is not set: no reader needs a snapshot"},
            env,
        )
        return
    if not env.get("DBT_DUCKDB_PATH"):
        raise SystemExit("DBT_DUCKDB_PATH is not set: which DuckDB file did dbt build?")
    done = publish(Path(env["DBT_DUCKDB_PATH"]), args.to, args.schema or DEFAULT_SCHEMAS, args.lock_timeout)
    result = {"snapshot": str(done.path), "tables": len(done.tables), "rows": sum(done.tables.values())}
    emit({**result, "seconds": round(done.seconds, 1)}, env)


if __name__ == "__main__":
    main()
