"""The BigQuery client calls data-health makes, answered from a DuckDB file shaped like the datasets.

This is not BigQuery, and no emulator of it is trustworthy here
(../shared/TOOLCHAIN.md). What it does check, for real: each query is valid
BigQuery SQL (sqlglot, raising on errors), it runs with a cap on bytes billed
and with typed query parameters, and over the same rows its answer is the
right one (sqlglot's DuckDB translation, executed). Metadata calls answer as
BigQuery's do: table names per dataset, row counts, `YYYYMMDD` partition ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import sqlglot
from google.api_core.exceptions import NotFound


@dataclass
class DuckDBBackedBigQuery:
    db: Path
    queries: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def _rows(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> list[tuple]:
        with duckdb.connect(str(self.db), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def list_tables(self, dataset: str) -> list[SimpleNamespace]:
        names = self._rows(
            "select table_name from information_schema.tables where table_schema = ? order by 1", [dataset]
        )
        if not self._rows("select 1 from information_schema.schemata where schema_name = ?", [dataset]):
            raise NotFound(f"Dataset {dataset} was not found")
        return [SimpleNamespace(table_id=name, reference=f"{dataset}.{name}") for (name,) in names]

    def get_table(self, reference: str) -> SimpleNamespace:
        (rows,) = self._rows(f"select count(*) from {reference}")[0]
        columns = self._rows(
            "select count(*) from information_schema.columns where table_schema || '.' || table_name = ?",
            [reference],
        )[0][0]
        return SimpleNamespace(num_rows=rows, num_bytes=rows * columns * 8)

    def list_partitions(self, reference: str) -> list[str]:
        return [
            day for (day,) in self._rows(f"select distinct strftime(event_date, '%Y%m%d') from {reference}")
        ]

    def query(self, sql: str, job_config: Any) -> SimpleNamespace:
        sqlglot.parse_one(sql, read="bigquery", error_level=sqlglot.ErrorLevel.RAISE)
        assert job_config.maximum_bytes_billed, "every query a reader sends caps the bytes it may bill"
        params = {p.name: p.value for p in job_config.query_parameters}
        assert {p.type_ for p in job_config.query_parameters} <= {
            "DATE",
            "TIMESTAMP",
            "STRING",
            "INT64",
            "FLOAT64",
        }
        # Parameterised: a value the query compares with is a parameter, never a literal in the SQL.
        literals = [node for node in sqlglot.parse_one(sql, read="bigquery").find_all(sqlglot.exp.Literal)]
        assert all(node.is_int and int(node.this) in (0, 1) for node in literals), f"a literal in {sql!r}"
        self.queries.append((sql, params))
        translated = sqlglot.transpile(sql, read="bigquery", write="duckdb")[0]
        with duckdb.connect(str(self.db), read_only=True) as con:
            result = con.execute(translated, params or [])
            names = [d[0] for d in result.description]
            rows = [Row(names, values) for values in result.fetchall()]
        return SimpleNamespace(result=lambda: rows)


class Row(tuple):
    """A result row as google.cloud.bigquery's Row serves it: by position, and as (name, value) items."""

    def __new__(cls, names: list[str], values: tuple) -> Row:
        row = super().__new__(cls, values)
        row._names = names  # type: ignore[attr-defined]
        return row

    def items(self) -> list[tuple[str, Any]]:
        return list(zip(self._names, self, strict=True))  # type: ignore[attr-defined]
