"""BigQuery, the clusters' warehouse: cheap enough to read on every scrape and every publish.

BigQuery bills every query by the bytes it scans, and a scrape every 30
seconds must not scan a year of events. So row counts and sizes come from
table metadata (free API calls), the newest event is read from the newest day
partition of fct_events only, and every query carries a cap on bytes billed
and typed parameters (never a value spliced into SQL).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from warehouses import FRESHNESS_TABLE, LAYER_TABLES, WarehouseReading, not_after

# BigQuery: the newest event within one day partition (a query parameter, so it prunes).
NEWEST_EVENT_SQL = (
    "select max(event_time_utc) as newest from core.fct_events"
    " where event_date = @day and event_time_utc <= @not_after"
)


def parameter(name: str, value: Any) -> Any:
    """A typed query parameter: BigQuery checks the type, so a string never becomes SQL."""
    from google.cloud import bigquery

    kinds = (
        (bool, "BOOL"),
        (int, "INT64"),
        (float, "FLOAT64"),
        (dt.datetime, "TIMESTAMP"),
        (dt.date, "DATE"),
    )
    for kind, name_of_type in kinds:
        if isinstance(value, kind):
            return bigquery.ScalarQueryParameter(name, name_of_type, value)
    return bigquery.ScalarQueryParameter(name, "STRING", str(value))


@dataclass(eq=False)
class BigQueryWarehouse:
    """The datasets dbt builds (one per layer, in the client's project)."""

    client: Any  # google.cloud.bigquery.Client
    maximum_bytes_billed: int = 1_000_000_000
    target: str = "bigquery"

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> BigQueryWarehouse:
        """With the pod's own credentials (Workload Identity): no key anywhere."""
        from google.cloud import bigquery

        client = bigquery.Client(
            project=env.get("DBT_BIGQUERY_PROJECT") or None, location=env.get("DBT_BIGQUERY_LOCATION")
        )
        return cls(client, int(env.get("WAREHOUSE_READ_MAX_BYTES_BILLED", "1000000000")))

    @contextmanager
    def session(self) -> Iterator[BigQueryWarehouse]:
        """The client already keeps its HTTP connections; each query is its own job either way."""
        yield self

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(
            query_parameters=[parameter(name, value) for name, value in (parameters or {}).items()],
            maximum_bytes_billed=self.maximum_bytes_billed,
        )
        return [dict(row.items()) for row in self.client.query(sql, job_config=config).result()]

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
                    if getattr(table, "table_type", "TABLE") == "VIEW":
                        continue  # a view holds no rows of its own: counting it would bill a scan
                    rows[name] = int(table.num_rows or 0)
                    size += int(table.num_bytes or 0)
        newest = self.newest_event(now) if FRESHNESS_TABLE in rows else None
        return WarehouseReading(newest, rows, size)

    def newest_event(self, now: dt.datetime) -> dt.datetime | None:
        latest = not_after(now)
        days = sorted((p for p in self.client.list_partitions(FRESHNESS_TABLE) if p.isdigit()), reverse=True)
        # Partitions are named YYYYMMDD; the newest believable one holds the newest event.
        for partition in days:
            day = dt.date(int(partition[:4]), int(partition[4:6]), int(partition[6:8]))
            if day > latest.date():
                continue
            found = self.query(NEWEST_EVENT_SQL, {"day": day, "not_after": latest})
            if found and found[0]["newest"] is not None:
                value: dt.datetime = found[0]["newest"]
                return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return None
