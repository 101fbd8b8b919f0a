"""Which warehouse a `--warehouse` URL names, and loading days into it: the one dispatch on the URL.

`duckdb:///path` (or a plain path) loads days in batches, one scan each, each
day checked as if loaded alone; `bigquery://[project]/dataset` replaces one
day partition per load job; `snowflake://[account]/database[/schema]` replaces
one day per transaction (PUT + COPY INTO). All classify with `load.classify`,
so a record is worth the same in each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from extract_load.contract import Contract
from extract_load.intervals import Interval
from extract_load.landing.bucket import Bucket
from extract_load.load.bigquery import BigQueryTarget
from extract_load.load.reconcile import LoadResult
from extract_load.load.snowflake import SnowflakeTarget
from extract_load.observability import progress


@dataclass(frozen=True)
class DuckDBTarget:
    path: Path


Target = DuckDBTarget | BigQueryTarget | SnowflakeTarget


def parse_warehouse(url: str) -> Target:
    """Raises ValueError for a scheme no loader handles."""
    parsed = urlparse(url)
    if parsed.scheme == "bigquery":
        return BigQueryTarget.parse(url)
    if parsed.scheme == "snowflake":
        return SnowflakeTarget.parse(url)
    if parsed.scheme in ("", "duckdb"):
        return DuckDBTarget(Path(parsed.path if parsed.scheme else url))
    raise ValueError(
        f"unsupported warehouse {url!r}: expected duckdb:///path, bigquery://[project]/dataset "
        "or snowflake://[account]/database[/schema]"
    )


def load_days(
    target: Target,
    bucket: Bucket,
    source: str,
    days: list[Interval],
    schema: str,
    contract: Contract,
    max_quarantine_ratio: float,
    on_loaded: Callable[[LoadResult], None],
) -> None:
    """Replace each day of `source` in the target; `on_loaded` hears of each committed day in order."""
    if isinstance(target, BigQueryTarget):
        from extract_load.load.bigquery import load_bigquery

        for day in progress(days, f"load {source}", len(days)):
            on_loaded(load_bigquery(bucket, source, day, target, None, contract, max_quarantine_ratio))
        return
    if isinstance(target, SnowflakeTarget):
        from extract_load.load.snowflake import load_snowflake_days

        load_snowflake_days(bucket, source, days, target, schema, contract, max_quarantine_ratio, on_loaded)
        return
    from extract_load.load.duckdb import load_duckdb_days

    load_duckdb_days(bucket, source, days, target.path, schema, contract, max_quarantine_ratio, on_loaded)
