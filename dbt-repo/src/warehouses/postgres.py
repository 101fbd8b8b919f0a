"""PostgreSQL, dbt's portable target: read with the settings profiles.yml's `postgres` output uses."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from warehouses import FRESHNESS_TABLE, LAYER_TABLES, NEWEST_EVENT_SQL, WarehouseReading, not_after
from warehouses.sessions import Sessions

PLACEHOLDER = re.compile(r"@(\w+)")


@dataclass(eq=False)
class PostgresWarehouse(Sessions):
    dsn: dict[str, Any] = field(repr=False)  # holds the password
    target: str = "postgres"
    # Held only inside session(): otherwise each query connects (and disconnects) on its own.
    connection: Any = field(default=None, repr=False)  # psycopg2 connection

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> PostgresWarehouse:
        return cls(
            {
                "host": env.get("DBT_POSTGRES_HOST", "127.0.0.1"),
                "port": int(env.get("DBT_POSTGRES_PORT", "5432")),
                "user": env.get("DBT_POSTGRES_USER", "postgres"),
                "password": env.get("DBT_POSTGRES_PASSWORD", ""),
                "dbname": env.get("DBT_POSTGRES_DATABASE", "analytics"),
                "connect_timeout": 10,
            }
        )

    # session(): one connection for every query inside, still one statement per snapshot of the
    # data: a transaction spanning the reads would hold locks dbt's next build waits for.
    @contextmanager
    def _open(self) -> Iterator[Any]:
        import psycopg2

        con = psycopg2.connect(**self.dsn)
        try:
            # A reader never holds a lock dbt's next build would wait for beyond one statement.
            con.set_session(readonly=True, autocommit=True)
            yield con
        finally:
            con.close()

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        with self._connected() as con, con.cursor() as cur:
            cur.execute(PLACEHOLDER.sub(r"%(\1)s", sql.replace("%", "%%")), dict(parameters or {}))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def read(self, now: dt.datetime) -> WarehouseReading:
        with self.session() as warehouse:
            return warehouse._read(now)

    def _read(self, now: dt.datetime) -> WarehouseReading:
        existing = {
            f"{row['table_schema']}.{row['table_name']}"
            for row in self.query(
                "select table_schema, table_name from information_schema.tables"
                " where table_schema in ('raw', 'staging', 'core', 'analytics')"
            )
        }
        rows = {
            table: int(self.query(f"select count(*) as n from {table}")[0]["n"])
            for table in LAYER_TABLES
            if table in existing
        }
        newest = None
        if FRESHNESS_TABLE in existing:
            newest = self.query(
                NEWEST_EVENT_SQL,
                {"not_after": not_after(now)},
            )[0]["newest"]
        size = sum(
            int(self.query("select pg_total_relation_size(@name::regclass) as n", {"name": table})[0]["n"])
            for table in rows
        )
        return WarehouseReading(newest.replace(tzinfo=dt.UTC) if newest else None, rows, size)
