"""DuckDB, the local warehouse: a file opened read-only per read or session, so dbt keeps its write lock."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from warehouses import LAYER_TABLES, NEWEST_EVENT_SQL, WarehouseReading, not_after
from warehouses.sessions import Sessions

PLACEHOLDER = re.compile(r"@(\w+)")


@dataclass(eq=False)
class DuckDBWarehouse(Sessions):
    path: Path
    target: str = "duckdb"
    # Held only inside session(): otherwise each read opens (and closes) its own.
    connection: duckdb.DuckDBPyConnection | None = field(default=None, repr=False)

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> DuckDBWarehouse:
        value = env.get("DBT_DUCKDB_PATH")
        if not value:
            raise SystemExit("DBT_DUCKDB_PATH is not set: which DuckDB file did dbt build?")
        return cls(Path(value))

    # session(): one read-only connection for every read inside, every number from one state of the file.
    def _open(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.path), read_only=True)

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        with self._connected() as con:
            return _rows(con, sql, parameters)

    def read(self, now: dt.datetime) -> WarehouseReading:
        with self._connected() as con:
            newest = _rows(
                con,
                NEWEST_EVENT_SQL,
                {"not_after": not_after(now)},
            )[0]["newest"]
            existing = {
                f"{row['table_schema']}.{row['table_name']}"
                for row in _rows(con, "select table_schema, table_name from information_schema.tables")
            }
            rows = {
                table: int(_rows(con, f"select count(*) as n from {table}")[0]["n"])
                for table in LAYER_TABLES
                if table in existing
            }
        size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}.wal")) if p.exists())
        return WarehouseReading(newest.replace(tzinfo=dt.UTC) if newest else None, rows, size)


def _rows(
    con: duckdb.DuckDBPyConnection, sql: str, parameters: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    result = con.execute(PLACEHOLDER.sub(r"$\1", sql), dict(parameters or {}) or None)
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
