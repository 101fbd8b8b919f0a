"""Loading landed days into Snowflake: PUT to an internal stage, COPY INTO, one transaction per day.

The interval is classified and reconciled first (`load.prepared`, shared with
BigQuery), so Snowflake quarantines the same records for the same reasons as
every other warehouse. Its accepted rows and quarantined records, as Parquet,
are PUT to the schema's internal stage `EXTRACT_LOAD` under the load's id.
Then one transaction replaces the day: delete the day from the raw and the
quarantine tables, `COPY INTO` each from the stage with
`ON_ERROR = ABORT_STATEMENT` (a record the classification let through but
Snowflake refuses fails the load instead of vanishing, unlike the
`ON_ERROR = CONTINUE` of the pipeline this replaces), count what the tables
now hold for the day against what was sent, record the load in `_LOADS`, and
commit. Anything short of the commit leaves the day as it was.

`FORCE = TRUE`: Snowflake's load history would otherwise skip a file it
loaded in the last 64 days, and a re-run (which deleted the day first)
would commit an empty day. Every value is derived from the landing (the
load id is the manifest's hash, `_loaded_at` its landing time), so a re-run
writes the same rows.

DDL (the tables, the stage) runs before the transaction: Snowflake commits
an open transaction before any DDL statement.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from extract_load.contract import EVENTS, Contract
from extract_load.intervals import Interval
from extract_load.landing.bucket import Bucket
from extract_load.load.prepared import PreparedInterval, prepare_interval
from extract_load.load.raw_tables import (
    QUARANTINE,
    Column,
    landed_at,
    raw_columns,
    snowflake_ddl,
    snowflake_tables,
)
from extract_load.load.reconcile import LoadResult, ReconciliationError
from extract_load.names import checked_name, snowflake_quoted
from extract_load.settings import settings

log = logging.getLogger(__name__)

STAGE = "EXTRACT_LOAD"
# Snowflake's types for a Parquet file's text values (`load.prepared` writes every value as text).
CASTS = {"string": "varchar", "date": "date", "timestamp": "timestamp_ntz"}


@dataclass(frozen=True)
class SnowflakeTarget:
    """`snowflake://[account]/database[/schema][?warehouse=W&role=R]`; the rest from `SNOWFLAKE_*`."""

    account: str | None
    database: str
    schema: str | None = None
    warehouse: str | None = None
    role: str | None = None

    @classmethod
    def parse(cls, url: str) -> SnowflakeTarget:
        parsed = urlparse(url)
        parts = [p for p in parsed.path.split("/") if p]
        if not 1 <= len(parts) <= 2:
            raise ValueError(f"{url!r}: expected snowflake://[account]/database[/schema]")
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        unknown = set(query) - {"warehouse", "role"}
        if unknown:
            raise ValueError(f"{url!r}: unknown parameter(s) {sorted(unknown)}; expected warehouse, role")
        database = checked_name(parts[0].lower(), "Snowflake database")
        schema = checked_name(parts[1].lower(), "Snowflake schema") if len(parts) == 2 else None
        return cls(parsed.hostname or None, database, schema, query.get("warehouse"), query.get("role"))


def connect(target: SnowflakeTarget) -> Any:
    """A session as the loader's own user, in autocommit (each day opens its own transaction)."""
    import snowflake.connector

    auth = settings().snowflake
    account = target.account or auth.account
    if not account:
        raise ValueError("Snowflake's account: in the URL (snowflake://<account>/...) or SNOWFLAKE_ACCOUNT")
    args = auth.connect_args()
    args.update({k: v for k, v in (("warehouse", target.warehouse), ("role", target.role)) if v})
    return snowflake.connector.connect(
        account=account,
        database=target.database.upper(),
        autocommit=True,
        login_timeout=60,
        session_parameters={
            "QUERY_TAG": "extract-load",
            # A day another session holds (a load still running, or one whose client died with its
            # transaction open) fails this load within minutes instead of waiting out the 12-hour default.
            "LOCK_TIMEOUT": 600,
            "TIMEZONE": "UTC",
        },
        **args,
    )


def load_snowflake_days(
    bucket: Bucket,
    source: str,
    days: list[Interval],
    target: SnowflakeTarget,
    schema: str = "raw",
    contract: Contract = EVENTS,
    max_quarantine_ratio: float = 0.05,
    on_loaded: Callable[[LoadResult], None] | None = None,
) -> list[LoadResult]:
    """Replace each day of `<schema>.<source>` in order; a failing day stops the load, those before stay.

    A snapshot source's table is its newest landed snapshot, as in DuckDB: of
    the days asked for only the last is loaded, unless the table holds a newer one.
    """
    schema = target.schema or schema
    results: list[LoadResult] = []
    connection = connect(target)
    try:
        cursor = connection.cursor()
        for statement in snowflake_ddl(schema, source, contract):
            cursor.execute(statement)
        cursor.execute(f"create stage if not exists {snowflake_quoted(schema)}.{STAGE}")  # internal
        if contract.is_snapshot and days:
            raw = snowflake_tables(schema, source)[0]
            held = cursor.execute(f"select max(_interval_start) from {raw}").fetchone()[0]
            latest = max(days, key=lambda day: day.start)
            days = [] if held is not None and held > latest.start else [latest]
        for day in days:
            result = _load_day(cursor, bucket, source, day, schema, contract, max_quarantine_ratio)
            log.info(
                "loaded %s %s into Snowflake: %d in, %d loaded, %d quarantined in %.2fs",
                source, day, result.rows_in, result.loaded, result.quarantined, result.seconds,
            )  # fmt: skip
            results.append(result)
            if on_loaded is not None:
                on_loaded(result)
    finally:
        connection.close()
    return results


def _load_day(
    cursor: Any,
    bucket: Bucket,
    source: str,
    day: Interval,
    schema: str,
    contract: Contract,
    max_quarantine_ratio: float,
) -> LoadResult:
    started = time.monotonic()
    raw, quarantine, loads = snowflake_tables(schema, source)
    with tempfile.TemporaryDirectory(dir=settings().temp_dir) as tmp:
        prepared = prepare_interval(bucket, source, day, contract, max_quarantine_ratio, Path(tmp), "parquet")
        stage = f"@{schema}.{STAGE}/{source}/{day.start.isoformat()}/{prepared.load_id}"  # names are checked
        # Each file in its own folder: COPY reads a folder, and a folder holds one table's file.
        if prepared.loaded:
            _put(cursor, prepared.rows, f"{stage}/rows/")
        if prepared.quarantined:
            _put(cursor, prepared.quarantine, f"{stage}/quarantine/")
    replaced = "" if contract.is_snapshot else " where _interval_start = %(day)s"
    params = {"day": day.start.isoformat()}
    cursor.execute("begin")
    try:
        cursor.execute(f"delete from {raw}{replaced}", params)
        cursor.execute(f"delete from {quarantine}{replaced}", params)
        if prepared.loaded:
            _copy(cursor, raw, raw_columns(contract), f"{stage}/rows/", prepared.loaded)
        if prepared.quarantined:
            _copy(cursor, quarantine, QUARANTINE, f"{stage}/quarantine/", prepared.quarantined)
        _check_held(cursor, raw, quarantine, replaced, params, prepared)
        cursor.execute(
            f"delete from {loads} where source = %(source)s and interval_start = %(day)s",
            {"source": source, **params},
        )
        cursor.execute(
            f"insert into {loads} select %(source)s, %(day)s::date, %(end)s::date, %(load_id)s, %(run_id)s,"
            " %(rows_in)s, %(loaded)s, %(quarantined)s, %(landed_at)s::timestamp_ntz",
            {
                "source": source,
                **params,
                "end": day.end.isoformat(),
                "load_id": prepared.load_id,
                "run_id": prepared.manifest.run_id,
                "rows_in": prepared.rows_in,
                "loaded": prepared.loaded,
                "quarantined": prepared.quarantined,
                "landed_at": landed_at(prepared.manifest).isoformat(sep=" "),
            },
        )
        if settings().failpoint_before_warehouse_commit:
            os.kill(os.getpid(), signal.SIGKILL)  # a crash with the transaction open, for the tests
        cursor.execute("commit")
    except BaseException:
        with contextlib.suppress(Exception):
            cursor.execute("rollback")
        raise
    return prepared.result(source, day, time.monotonic() - started)


def _put(cursor: Any, file: Path, stage: str) -> None:
    """Upload one file to the stage; the PUT's own result says whether it arrived."""
    rows = cursor.execute(f"put 'file://{file}' {stage} overwrite = true auto_compress = false").fetchall()
    statuses = {row[6] for row in rows}
    if statuses != {"UPLOADED"}:
        raise RuntimeError(f"PUT {file.name} to {stage}: {rows}")


def _copy(cursor: Any, table: str, columns: tuple[Column, ...], stage: str, expected: int) -> None:
    """COPY the stage folder into `table`, each text value cast to its column's type."""
    names = ", ".join(c.name for c in columns)
    values = ", ".join(
        f"parse_json($1:{c.name})" if c.kind == "json" else f"$1:{c.name}::{CASTS[c.kind]}" for c in columns
    )
    results = cursor.execute(
        f"copy into {table} ({names}) from (select {values} from {stage})"
        " file_format = (type = parquet) on_error = abort_statement force = true purge = true"
    ).fetchall()
    loaded = sum(int(row[3]) for row in results if row[1] == "LOADED")
    if loaded != expected or any(row[1] != "LOADED" for row in results):
        raise ReconciliationError(f"COPY INTO {table} loaded {loaded} of {expected} rows: {results}")


def _check_held(
    cursor: Any, raw: str, quarantine: str, replaced: str, params: dict[str, str], prepared: PreparedInterval
) -> None:
    """What the tables hold for the day now, counted by Snowflake, is what was sent: else nothing commits."""
    held = cursor.execute(f"select count(*) from {raw}{replaced}", params).fetchone()[0]
    refused = cursor.execute(f"select count(*) from {quarantine}{replaced}", params).fetchone()[0]
    if (held, refused) != (prepared.loaded, prepared.quarantined):
        raise ReconciliationError(
            f"{raw}: the day holds {held} rows and {refused} quarantined after the load, "
            f"expected {prepared.loaded} and {prepared.quarantined}; rolled back"
        )
