"""Loading one landed interval into the warehouse raw tables, replacing it.

The raw table keeps every field as the source sent it plus the whole record as
JSON, so columns a later export adds are never lost. Records that cannot be
used (no parseable event_time, no user, an unknown or missing event type, a
non-numeric or negative amount, a time outside the interval) go to the
quarantine table and to `quarantine/<source>/dt=.../` in the bucket, each with
a reason. The load refuses to commit unless rows read = loaded + quarantined =
manifest rows, or when the quarantined share passes the threshold.

Everything written is derived from the landed data and its manifest (the load
id is a hash of the manifest, `_loaded_at` is when the interval was landed), so
loading the same landing again leaves the warehouse exactly as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from extract_load import engine
from extract_load.bucket import Bucket
from extract_load.intervals import Interval
from extract_load.landing import Manifest, partition_prefix, read_manifest
from extract_load.schema import BROKEN_LINE_KEY, EVENT_COLUMNS, KNOWN_EVENT_TYPES, local_time_sql

log = logging.getLogger(__name__)


class ReconciliationError(RuntimeError):
    """Counts do not add up; nothing was committed."""


class QuarantineThresholdError(RuntimeError):
    """Too large a share of the interval was quarantined; nothing was committed."""


@dataclass(frozen=True)
class LoadResult:
    source: str
    interval: Interval
    rows_in: int
    loaded: int
    quarantined: int
    load_id: str
    bytes: int = 0
    seconds: float = 0.0
    reasons: dict[str, int] | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "interval_start": self.interval.start.isoformat(),
            "interval_end": self.interval.end.isoformat(),
            "rows_in": self.rows_in,
            "loaded": self.loaded,
            "quarantined": self.quarantined,
            "load_id": self.load_id,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "reasons": self.reasons or {},
        }


def _ddl(schema: str, table: str) -> list[str]:
    fields = ",\n".join(f"    {c} varchar" for c in EVENT_COLUMNS)
    return [
        f"create schema if not exists {schema}",
        f"""create table if not exists {schema}.{table} (
{fields},
    _event_time_local timestamp not null,
    _record json not null,
    _interval_start date not null,
    _source_file varchar not null,
    _load_id varchar not null,
    _loaded_at timestamp not null
)""",
        f"""create table if not exists {schema}.{table}_quarantine (
    _record varchar not null,
    reason varchar not null,
    _interval_start date not null,
    _source_file varchar not null,
    _load_id varchar not null,
    _loaded_at timestamp not null
)""",
        f"""create table if not exists {schema}._loads (
    source varchar not null,
    interval_start date not null,
    interval_end date not null,
    load_id varchar not null,
    extract_run_id varchar not null,
    rows_in bigint not null,
    loaded bigint not null,
    quarantined bigint not null,
    landed_at timestamp not null,
    primary key (source, interval_start)
)""",
    ]


def _sql_strings(values: list[str] | frozenset[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in sorted(values)) + "]"


def check_counts(
    source: str,
    interval: Interval,
    manifest_rows: int,
    rows_in: int,
    reasons: dict[str, int],
    max_quarantine_ratio: float,
    bucket: Bucket,
) -> None:
    """Refuse to commit when rows went missing or too many were quarantined."""
    quarantined = sum(reasons.values())
    if rows_in != manifest_rows:
        raise ReconciliationError(
            f"{source} {interval}: manifest says {manifest_rows} rows, read {rows_in}, "
            f"loaded {rows_in - quarantined} + quarantined {quarantined}"
        )
    if rows_in and quarantined / rows_in > max_quarantine_ratio:
        raise QuarantineThresholdError(
            f"{source} {interval}: {quarantined} of {rows_in} records ({quarantined / rows_in:.1%}) "
            f"would be quarantined, over the {max_quarantine_ratio:.1%} threshold; reasons {reasons}. "
            f"Nothing was loaded; the records are in "
            f"{bucket.url}/{quarantine_prefix(source, interval)}/{QUARANTINE_FILE}"
        )


def classified_sql(files: list[str], interval: Interval, event_types: frozenset[str]) -> str:
    """One row per landed line: its fields, parsed time and quarantine reason (or NULL)."""
    file_list = _sql_strings(files)
    fields = ",\n".join(
        f"        case when json_type(json) = 'OBJECT' then nullif(trim(json ->> '{c}'), '') end as {c}"
        for c in EVENT_COLUMNS
    )
    start = interval.start.isoformat()
    end = interval.end.isoformat()
    return f"""
    with scanned as (
        -- A plain scan keeps file order (DuckDB preserves insertion order), so
        -- row numbers over it are line numbers.
        select json, filename, row_number() over () as _row
        from read_ndjson_objects({file_list}, filename = true, compression = 'gzip')
    ),
    landed as (
        select json, filename, _row - min(_row) over (partition by filename) + 1 as _line
        from scanned
    ),
    typed as (
        select
            json,
            filename,
            _line,
{fields},
            {local_time_sql("nullif(trim(json ->> 'event_time'), '')")} as _event_time_local
        from landed
    )
    select
        *,
        case
            when json_type(json) <> 'OBJECT' then 'not_a_json_object'
            when (json ->> '{BROKEN_LINE_KEY}') is not null then 'broken_line'
            when event_time is null then 'missing_event_time'
            when _event_time_local is null then 'unparseable_event_time'
            when _event_time_local < timestamp '{start}' or _event_time_local >= timestamp '{end}'
                then 'event_time_outside_interval'
            when user_id is null then 'missing_user_id'
            when event_type is null then 'missing_event_type'
            when not list_contains({_sql_strings(event_types)}, lower(event_type)) then 'unknown_event_type'
            when miles_amount is not null and try_cast(miles_amount as double) is null
                then 'non_numeric_miles_amount'
            when try_cast(miles_amount as double) < 0 then 'negative_miles_amount'
        end as reason
    from typed
    """


def load_duckdb(
    bucket: Bucket,
    source: str,
    interval: Interval,
    database: Path,
    schema: str = "raw",
    event_types: frozenset[str] = KNOWN_EVENT_TYPES,
    max_quarantine_ratio: float = 0.05,
) -> LoadResult:
    """Replace `interval` of `schema.<source>` with what the manifest lists, atomically."""
    started = time.monotonic()
    manifest: Manifest = read_manifest(bucket, source, interval)
    prefix = partition_prefix(source, interval)
    files = [str(bucket.local_path(f"{prefix}/{p.name}")) for p in manifest.parts]
    load_id = hashlib.sha256(manifest.to_json()).hexdigest()[:16]
    landed_at = dt.datetime.fromisoformat(manifest.extracted_at).astimezone(dt.UTC).replace(tzinfo=None)
    table = source
    database.parent.mkdir(parents=True, exist_ok=True)
    con = engine.connect(str(database))
    try:
        for statement in _ddl(schema, table):
            con.execute(statement)
        con.execute("begin transaction")
        con.execute(f"delete from {schema}.{table} where _interval_start = ?", [interval.start])
        con.execute(f"delete from {schema}.{table}_quarantine where _interval_start = ?", [interval.start])
        reasons: dict[str, int] = {}
        if files:
            con.execute(f"create temp table classified as {classified_sql(files, interval, event_types)}")
            columns = ", ".join(EVENT_COLUMNS)
            # Ordered inserts keep the table's physical layout identical across re-runs.
            con.execute(
                f"""
                insert into {schema}.{table}
                select {columns}, _event_time_local, json, ?, filename, ?, ?
                from classified where reason is null
                order by filename, _line
                """,
                [interval.start, load_id, landed_at],
            )
            con.execute(
                f"""
                insert into {schema}.{table}_quarantine
                select cast(json as varchar), reason, ?, filename, ?, ?
                from classified where reason is not null
                order by filename, _line
                """,
                [interval.start, load_id, landed_at],
            )
            reasons = dict(
                con.execute(
                    "select reason, count(*) from classified where reason is not null group by 1 order by 1"
                ).fetchall()
            )
            rows_in = con.execute("select count(*) from classified").fetchone()[0]  # type: ignore[index]
            write_quarantine(con, bucket, source, interval)
            con.execute("drop table classified")
        else:
            rows_in = 0
            bucket.delete(f"{quarantine_prefix(source, interval)}/{QUARANTINE_FILE}")
        quarantined = sum(reasons.values())
        loaded = rows_in - quarantined
        check_counts(source, interval, manifest.row_count, rows_in, reasons, max_quarantine_ratio, bucket)
        con.execute(
            f"insert or replace into {schema}._loads values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                source,
                interval.start,
                interval.end,
                load_id,
                manifest.run_id,
                rows_in,
                loaded,
                quarantined,
                landed_at,
            ],
        )
        con.execute("commit")
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # no transaction was open yet
            con.execute("rollback")
        raise
    finally:
        con.close()
    seconds = time.monotonic() - started
    log.info(
        "loaded %s %s from %s: %d in, %d loaded, %d quarantined in %.2fs",
        source,
        interval,
        prefix,
        rows_in,
        loaded,
        quarantined,
        seconds,
    )
    return LoadResult(
        source, interval, rows_in, loaded, quarantined, load_id, manifest.bytes, seconds, reasons
    )


QUARANTINE_FILE = "quarantine.jsonl.gz"


def quarantine_prefix(source: str, interval: Interval) -> str:
    return f"quarantine/{source}/{interval.partition}"


def write_quarantine(con: duckdb.DuckDBPyConnection, bucket: Bucket, source: str, interval: Interval) -> None:
    """Mirror the interval's quarantined records, with reasons, into the bucket.

    Streamed in batches into one gzip member, so a bad day with millions of
    quarantined records costs their compressed size, not their rows, in memory.
    """
    key = f"{quarantine_prefix(source, interval)}/{QUARANTINE_FILE}"
    cursor = con.execute(
        "select reason, cast(json as varchar), filename, _line from classified "
        "where reason is not null order by filename, _line"
    )
    buffer = io.BytesIO()
    written = 0
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as out:
        while batch := cursor.fetchmany(10_000):
            out.write(
                "".join(
                    json.dumps(
                        {"reason": r, "record": rec, "source_file": Path(f).name, "line": n},
                        separators=(",", ":"),
                    )
                    + "\n"
                    for r, rec, f, n in batch
                ).encode()
            )
            written += len(batch)
    if written:
        bucket.write_bytes(key, buffer.getvalue())
    else:
        bucket.delete(key)
