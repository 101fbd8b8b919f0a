"""The raw tables every warehouse gets, declared once and rendered for each.

A source's raw table holds each contract column as the text the source sent
(typing is dbt staging's job, so a new export format never fails a load),
plus the record itself and where it came from. Its quarantine table holds the
records refused, with their reasons. DuckDB, PostgreSQL and Snowflake get
DDL, BigQuery a load-job schema; all come from the same columns, so they
cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from extract_load.contract import EVENTS, Contract
from extract_load.landing.manifest import Manifest
from extract_load.names import quoted, snowflake_quoted

Kind = Literal["string", "json", "date", "timestamp", "integer"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    required: bool = True


# Where each row came from: the day it belongs to, its landed file, the load that wrote it.
LINEAGE = (
    Column("_interval_start", "date"),
    Column("_source_file", "string"),
    Column("_load_id", "string"),
    Column("_loaded_at", "timestamp"),
)


def raw_columns(contract: Contract = EVENTS) -> tuple[Column, ...]:
    """A source's raw table: its contract's columns as text, its local time, the record, its lineage."""
    return (
        *(Column(c, "string", required=False) for c in contract.columns),
        *(() if contract.is_snapshot else (Column("_event_time_local", "timestamp"),)),
        Column("_record", "json"),
        *LINEAGE,
    )


QUARANTINE = (
    Column("_record", "string"),  # text, not JSON: a refused record need not be JSON at all
    Column("reason", "string"),
    *LINEAGE,
)

# `_loads`: one row per loaded day and source (primary key), what its load counted.
LOADS = (
    Column("source", "string"),
    Column("interval_start", "date"),
    Column("interval_end", "date"),
    Column("load_id", "string"),
    Column("extract_run_id", "string"),
    Column("rows_in", "integer"),
    Column("loaded", "integer"),
    Column("quarantined", "integer"),
    Column("landed_at", "timestamp"),
)

# PostgreSQL and what speaks its dialect (AlloyDB, Aurora): `extract-load sources ddl --dialect postgres`.
POSTGRES_TYPES: dict[Kind, str] = {
    "string": "text",
    "json": "jsonb",
    "date": "date",
    "timestamp": "timestamp",
    "integer": "bigint",
}
DUCKDB_TYPES: dict[Kind, str] = {
    "string": "varchar",
    "json": "json",
    "date": "date",
    "timestamp": "timestamp",
    "integer": "bigint",
}
# Snowflake: a record is a VARIANT (dbt reads `_record:field`); times carry no zone, as everywhere.
SNOWFLAKE_TYPES: dict[Kind, str] = {
    "string": "varchar",
    "json": "variant",
    "date": "date",
    "timestamp": "timestamp_ntz",
    "integer": "number",
}
BIGQUERY_TYPES: dict[Kind, str] = {
    "string": "STRING",
    "json": "JSON",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "integer": "INT64",
}


def tables(schema: str, source: str) -> tuple[str, str, str]:
    """The raw, quarantine and loads tables of a source, as quoted identifiers (names checked)."""
    return (
        f"{quoted(schema)}.{quoted(source)}",
        f"{quoted(schema)}.{quoted(source + '_quarantine')}",
        f'{quoted(schema)}."_loads"',
    )


def _column_list(columns: tuple[Column, ...], types: dict[Kind, str] | None = None) -> str:
    types = types or DUCKDB_TYPES
    return ",\n".join(f"    {c.name} {types[c.kind]}{' not null' if c.required else ''}" for c in columns)


def _loads_ddl(loads: str, types: dict[Kind, str]) -> str:
    return (
        f"create table if not exists {loads} (\n{_column_list(LOADS, types)},\n"
        "    primary key (source, interval_start)\n)"
    )


def postgres_ddl(schema: str, source: str, contract: Contract = EVENTS) -> list[str]:
    """The raw and quarantine tables for a PostgreSQL-compatible warehouse, from the same declaration."""
    raw, quarantine, _ = tables(schema, source)
    return [
        f"create schema if not exists {quoted(schema)}",
        f"create table if not exists {raw} (\n{_column_list(raw_columns(contract), POSTGRES_TYPES)}\n)",
        f"create table if not exists {quarantine} (\n{_column_list(QUARANTINE, POSTGRES_TYPES)}\n)",
        *(f"alter table {raw} add column if not exists {quoted(c)} text" for c in contract.columns),
    ]


def duckdb_ddl(schema: str, source: str, contract: Contract = EVENTS) -> list[str]:
    """The statements that create a source's tables in DuckDB (and in `_loads`, one row per loaded day)."""
    raw, quarantine, loads = tables(schema, source)
    return [
        f"create schema if not exists {quoted(schema)}",
        f"create table if not exists {raw} (\n{_column_list(raw_columns(contract))}\n)",
        f"create table if not exists {quarantine} (\n{_column_list(QUARANTINE)}\n)",
        _loads_ddl(loads, DUCKDB_TYPES),
        # A column the contract gained since the table was created (schema drift: new columns are kept):
        # added, empty for the days loaded before, which a reload of them fills from their records.
        *(f"alter table {raw} add column if not exists {quoted(c)} varchar" for c in contract.columns),
    ]


def snowflake_ddl(schema: str, source: str, contract: Contract = EVENTS) -> list[str]:
    """A source's tables in Snowflake, `_loads` included: DDL, so run before a load's transaction.

    (Snowflake commits an open transaction before any DDL statement.)
    """
    raw, quarantine, loads = snowflake_tables(schema, source)
    return [
        f"create schema if not exists {snowflake_quoted(schema)}",
        f"create table if not exists {raw} (\n{_column_list(raw_columns(contract), SNOWFLAKE_TYPES)}\n)",
        f"create table if not exists {quarantine} (\n{_column_list(QUARANTINE, SNOWFLAKE_TYPES)}\n)",
        _loads_ddl(loads, SNOWFLAKE_TYPES),
        *(
            f"alter table {raw} add column if not exists {snowflake_quoted(c)} varchar"
            for c in contract.columns
        ),
    ]


def snowflake_tables(schema: str, source: str) -> tuple[str, str, str]:
    """`tables` for Snowflake: the same names, as Snowflake resolves them unquoted."""
    return (
        f"{snowflake_quoted(schema)}.{snowflake_quoted(source)}",
        f"{snowflake_quoted(schema)}.{snowflake_quoted(source + '_quarantine')}",
        f'{snowflake_quoted(schema)}."_LOADS"',
    )


def bigquery_schema(columns: tuple[Column, ...]) -> list[Any]:
    """The same columns as BigQuery `SchemaField`s, for a load job's schema."""
    from google.cloud.bigquery import SchemaField

    return [
        SchemaField(c.name, BIGQUERY_TYPES[c.kind], mode="REQUIRED" if c.required else "NULLABLE")
        for c in columns
    ]


def load_id(manifest: Manifest) -> str:
    """A load's id is the hash of the manifest it loaded: the same landing always loads as the same id."""
    return hashlib.sha256(manifest.to_json()).hexdigest()[:16]


def landed_at(manifest: Manifest) -> dt.datetime:
    """When the interval was landed (naive UTC), written as `_loaded_at` so a reload changes nothing."""
    return dt.datetime.fromisoformat(manifest.extracted_at).astimezone(dt.UTC).replace(tzinfo=None)
