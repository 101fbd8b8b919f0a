"""Reading what the warehouse holds, cheaply enough to repeat for every scrape.

DuckDB (local) is a file: counting rows and taking the newest event is cheap.
BigQuery (clusters) bills every query by the bytes it scans, and a scrape
every 30 seconds must not scan a year of events. So row counts and sizes come
from table metadata (free API calls), and the newest event is read from the
newest day partition of fct_events only, with a cap on bytes billed.

Both ignore events dated after tomorrow (by the exporter's clock): one bad
future timestamp must not make stale data look fresh.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import duckdb

from dashboard.warehouse import LAYER_TABLES

FRESHNESS_TABLE = "core.fct_events"
# BigQuery: the newest event within one day partition (a query parameter, so it prunes).
NEWEST_EVENT_SQL = (
    "select max(event_time_utc) as newest from core.fct_events"
    " where event_date = @day and event_time_utc <= @not_after"
)


@dataclass(eq=False)
class WarehouseReading:
    newest_event: dt.datetime | None
    rows: dict[str, int]
    size_bytes: int


class Warehouse(Protocol):
    def read(self, now: dt.datetime) -> WarehouseReading: ...


def _not_after(now: dt.datetime) -> dt.datetime:
    """The newest event time believed: a day of clock skew, no more. Naive UTC, as the tables store it."""
    return (now + dt.timedelta(days=1)).astimezone(dt.UTC).replace(tzinfo=None)


@dataclass(eq=False)
class DuckDBWarehouse:
    path: Path

    def read(self, now: dt.datetime) -> WarehouseReading:
        # Read-only, and only for the length of a scrape: dbt needs the write lock.
        with duckdb.connect(str(self.path), read_only=True) as con:

            def value(sql: str, parameters: list[Any] | None = None) -> Any:
                row = con.execute(sql, parameters).fetchone()
                return row[0] if row else None

            newest = value(
                f"select max(event_time_utc) from {FRESHNESS_TABLE} where event_time_utc <= ?",
                [_not_after(now)],
            )
            rows = {}
            for table in LAYER_TABLES:
                schema, name = table.split(".")
                exists = value(
                    "select count(*) from information_schema.tables"
                    " where table_schema = ? and table_name = ?",
                    [schema, name],
                )
                if exists:
                    rows[table] = int(value(f"select count(*) from {table}"))
        size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}.wal")) if p.exists())
        return WarehouseReading(newest.replace(tzinfo=dt.UTC) if newest else None, rows, size)


@dataclass(eq=False)
class BigQueryWarehouse:
    """The datasets dbt builds (one per layer, in the client's project)."""

    client: Any  # google.cloud.bigquery.Client
    maximum_bytes_billed: int = 1_000_000_000

    def read(self, now: dt.datetime) -> WarehouseReading:
        from google.api_core.exceptions import NotFound

        rows: dict[str, int] = {}
        size = 0
        for dataset in sorted({table.split(".")[0] for table in LAYER_TABLES}):
            try:
                listed = list(self.client.list_tables(dataset))
            except NotFound:
                continue  # not built yet in this project
            for item in listed:
                name = f"{dataset}.{item.table_id}"
                if name in LAYER_TABLES:
                    table = self.client.get_table(item.reference)
                    rows[name] = int(table.num_rows or 0)
                    size += int(table.num_bytes or 0)
        newest = self.newest_event(now) if FRESHNESS_TABLE in rows else None
        return WarehouseReading(newest, rows, size)

    def newest_event(self, now: dt.datetime) -> dt.datetime | None:
        from google.cloud import bigquery

        not_after = _not_after(now)
        days = sorted((p for p in self.client.list_partitions(FRESHNESS_TABLE) if p.isdigit()), reverse=True)
        # Partitions are named YYYYMMDD; the newest believable one holds the newest event.
        for partition in days:
            day = dt.date(int(partition[:4]), int(partition[4:6]), int(partition[6:8]))
            if day > not_after.date():
                continue
            config = bigquery.QueryJobConfig(
                query_parameters=[
                    bigquery.ScalarQueryParameter("day", "DATE", day),
                    bigquery.ScalarQueryParameter("not_after", "TIMESTAMP", not_after),
                ],
                maximum_bytes_billed=self.maximum_bytes_billed,
                use_query_cache=False,
            )
            for row in self.client.query(NEWEST_EVENT_SQL, job_config=config).result():
                if row[0] is not None:
                    value: dt.datetime = row[0]
                    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return None
