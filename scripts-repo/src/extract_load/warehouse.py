"""Loading one landed interval into the warehouse raw tables, replacing it.

The raw table keeps every field as the source sent it plus the whole record as
JSON, so columns a later export adds are never lost. Records that cannot be
used (no parseable event_time, no user, no event type, a non-numeric or
negative amount, a time outside the interval) go to the quarantine table with a reason. The
load refuses to commit unless rows read = loaded + quarantined = manifest rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from extract_load.bucket import Bucket
from extract_load.intervals import Interval
from extract_load.landing import Manifest, partition_prefix, read_manifest
from extract_load.schema import EVENT_COLUMNS, local_time_sql

log = logging.getLogger(__name__)


class ReconciliationError(RuntimeError):
    """Counts do not add up; nothing was committed."""


@dataclass(frozen=True)
class LoadResult:
    source: str
    interval: Interval
    rows_in: int
    loaded: int
    quarantined: int
    load_id: str

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "interval_start": self.interval.start.isoformat(),
            "interval_end": self.interval.end.isoformat(),
            "rows_in": self.rows_in,
            "loaded": self.loaded,
            "quarantined": self.quarantined,
            "load_id": self.load_id,
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
    load_id varchar primary key,
    source varchar not null,
    interval_start date not null,
    interval_end date not null,
    extract_run_id varchar not null,
    rows_in bigint not null,
    loaded bigint not null,
    quarantined bigint not null,
    loaded_at timestamp not null
)""",
    ]


def _classified_sql(files: list[str], interval: Interval) -> str:
    """One row per landed line: its fields, parsed time and quarantine reason (or NULL)."""
    file_list = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    fields = ",\n".join(
        f"        case when json_type(json) = 'OBJECT' then nullif(trim(json ->> '{c}'), '') end as {c}"
        for c in EVENT_COLUMNS
    )
    start = interval.start.isoformat()
    end = interval.end.isoformat()
    return f"""
    with landed as (
        select json, filename
        from read_ndjson_objects({file_list}, filename = true, compression = 'gzip')
    ),
    typed as (
        select
            json,
            filename,
{fields},
            {local_time_sql("nullif(trim(json ->> 'event_time'), '')")} as _event_time_local
        from landed
    )
    select
        *,
        case
            when json_type(json) <> 'OBJECT' then 'not_a_json_object'
            when event_time is null then 'missing_event_time'
            when _event_time_local is null then 'unparseable_event_time'
            when _event_time_local < timestamp '{start}' or _event_time_local >= timestamp '{end}'
                then 'event_time_outside_interval'
            when user_id is null then 'missing_user_id'
            when event_type is null then 'missing_event_type'
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
) -> LoadResult:
    """Replace `interval` of `schema.<source>` with what the manifest lists, atomically."""
    manifest: Manifest = read_manifest(bucket, source, interval)
    prefix = partition_prefix(source, interval)
    files = [str(bucket.local_path(f"{prefix}/{p.name}")) for p in manifest.parts]
    load_id = uuid.uuid4().hex[:12]
    loaded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    table = source
    database.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(database))
    try:
        for statement in _ddl(schema, table):
            con.execute(statement)
        con.execute("begin transaction")
        con.execute(f"delete from {schema}.{table} where _interval_start = ?", [interval.start])
        con.execute(f"delete from {schema}.{table}_quarantine where _interval_start = ?", [interval.start])
        loaded = quarantined = rows_in = 0
        if files:
            con.execute(f"create temp table classified as {_classified_sql(files, interval)}")
            columns = ", ".join(EVENT_COLUMNS)
            con.execute(
                f"""
                insert into {schema}.{table}
                select {columns}, _event_time_local, json, ?, filename, ?, ?
                from classified where reason is null
                """,
                [interval.start, load_id, loaded_at],
            )
            con.execute(
                f"""
                insert into {schema}.{table}_quarantine
                select cast(json as varchar), reason, ?, filename, ?, ?
                from classified where reason is not null
                """,
                [interval.start, load_id, loaded_at],
            )
            rows_in, loaded, quarantined = con.execute(
                "select count(*), count(*) filter (reason is null), count(*) filter (reason is not null) "
                "from classified"
            ).fetchone()  # type: ignore[misc]
            con.execute("drop table classified")
        if not (rows_in == manifest.row_count == loaded + quarantined):
            raise ReconciliationError(
                f"{source} {interval}: manifest says {manifest.row_count} rows, read {rows_in}, "
                f"loaded {loaded} + quarantined {quarantined}"
            )
        con.execute(
            f"insert into {schema}._loads values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                load_id,
                source,
                interval.start,
                interval.end,
                manifest.run_id,
                rows_in,
                loaded,
                quarantined,
                loaded_at,
            ],
        )
        con.execute("commit")
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # no transaction was open yet
            con.execute("rollback")
        raise
    finally:
        con.close()
    log.info(
        "loaded %s %s from %s: %d in, %d loaded, %d quarantined",
        source,
        interval,
        prefix,
        rows_in,
        loaded,
        quarantined,
    )
    return LoadResult(source, interval, rows_in, loaded, quarantined, load_id)
