"""Snowflake: read with the settings profiles.yml's `snowflake` output uses (a key pair or an OAuth token).

Row counts are `count(*)` (Snowflake answers it from micro-partition metadata,
exact, where `information_schema.tables.row_count` may lag), sizes come from
`information_schema.tables`; freshness is one aggregate over `core.fct_events`.
"""

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
class SnowflakeWarehouse(Sessions):
    connect_args: dict[str, Any] = field(repr=False)  # holds the key or the token
    target: str = "snowflake"
    connection: Any = field(default=None, repr=False)  # snowflake.connector connection, inside session()

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> SnowflakeWarehouse:
        """The `DBT_SNOWFLAKE_*` variables profiles.yml reads, with the same defaults."""
        args: dict[str, Any] = {
            "account": env.get("DBT_SNOWFLAKE_ACCOUNT", ""),
            "user": env.get("DBT_SNOWFLAKE_USER", ""),
            "database": env.get("DBT_SNOWFLAKE_DATABASE", "ANALYTICS"),
            "login_timeout": 60,
            "session_parameters": {"QUERY_TAG": "platform-reader", "TIMEZONE": "UTC"},
        }
        for name in ("role", "warehouse", "host", "port", "protocol"):
            if value := env.get(f"DBT_SNOWFLAKE_{name.upper()}"):
                args[name] = int(value) if name == "port" else value
        passphrase = env.get("DBT_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE") or None
        if key := env.get("DBT_SNOWFLAKE_PRIVATE_KEY"):
            args.update(authenticator="SNOWFLAKE_JWT", private_key=_der(key, passphrase))
        elif path := env.get("DBT_SNOWFLAKE_PRIVATE_KEY_PATH"):
            args.update(authenticator="SNOWFLAKE_JWT", private_key_file=path)
            if passphrase:
                args["private_key_file_pwd"] = passphrase
        elif token := env.get("DBT_SNOWFLAKE_TOKEN"):
            args.update(authenticator="oauth", token=token)
        return cls(args)

    @contextmanager
    def _open(self) -> Iterator[Any]:
        import snowflake.connector

        con = snowflake.connector.connect(autocommit=True, **self.connect_args)
        try:
            yield con
        finally:
            con.close()

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows as dicts keyed by lower-case names (Snowflake reports unquoted names in upper case)."""
        with self._connected() as con:
            cur = con.cursor()
            cur.execute(PLACEHOLDER.sub(r"%(\1)s", sql.replace("%", "%%")), dict(parameters or {}))
            names = [d[0].lower() for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def read(self, now: dt.datetime) -> WarehouseReading:
        with self.session() as warehouse:
            return warehouse._read(now)

    def _read(self, now: dt.datetime) -> WarehouseReading:
        layers = "where lower(table_schema) in ('raw', 'staging', 'core', 'analytics')"
        tables = {
            f"{row['table_schema']}.{row['table_name']}".lower(): row
            for row in self.query(
                f"select table_schema, table_name, bytes from information_schema.tables {layers}"
            )
        }
        views = {  # staging is views (also listed as tables by Snowflake, not by its emulator)
            f"{row['table_schema']}.{row['table_name']}".lower()
            for row in self.query(f"select table_schema, table_name from information_schema.views {layers}")
        }
        rows = {
            table: int(self.query(f"select count(*) as n from {table}")[0]["n"])
            for table in LAYER_TABLES
            if table in tables or table in views
        }
        newest = None
        if FRESHNESS_TABLE in rows:
            newest = self.query(NEWEST_EVENT_SQL, {"not_after": not_after(now)})[0]["newest"]
        size = sum(int(tables[table]["bytes"] or 0) for table in rows if table in tables)
        return WarehouseReading(newest.replace(tzinfo=dt.UTC) if newest else None, rows, size)


def _der(pem: str, passphrase: str | None) -> bytes:
    """The PEM private key (a Secret's text) as the DER bytes the connector takes."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pem.encode(), passphrase.encode() if passphrase else None)
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
