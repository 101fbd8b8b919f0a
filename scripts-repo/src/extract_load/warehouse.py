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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from extract_load import engine
from extract_load.bucket import Bucket
from extract_load.intervals import Interval
from extract_load.landing import Manifest, ManifestError, partition_prefix, read_manifest
from extract_load.names import checked_name, quoted
from extract_load.schema import (
    BROKEN_LINE_KEY,
    EARLIEST_EVENT_TIME,
    EVENT_COLUMNS,
    KNOWN_EVENT_TYPES,
    LATEST_EVENT_TIME,
    OVERSIZED_KEY,
    local_time_sql,
)

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
    raw, quarantine, loads = _tables(schema, table)
    return [
        f"create schema if not exists {quoted(schema)}",
        f"""create table if not exists {raw} (
{fields},
    _event_time_local timestamp not null,
    _record json not null,
    _interval_start date not null,
    _source_file varchar not null,
    _load_id varchar not null,
    _loaded_at timestamp not null
)""",
        f"""create table if not exists {quarantine} (
    _record varchar not null,
    reason varchar not null,
    _interval_start date not null,
    _source_file varchar not null,
    _load_id varchar not null,
    _loaded_at timestamp not null
)""",
        f"""create table if not exists {loads} (
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


def _tables(schema: str, source: str) -> tuple[str, str, str]:
    """The raw, quarantine and loads tables of a source, as quoted identifiers (names checked)."""
    return (
        f"{quoted(schema)}.{quoted(source)}",
        f"{quoted(schema)}.{quoted(source + '_quarantine')}",
        f'{quoted(schema)}."_loads"',
    )


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
    """One row per landed line of one interval: fields, parsed time, quarantine reason (or NULL)."""
    return classified_days_sql({f: interval for f in files}, event_types)


def classified_days_sql(
    files: dict[str, Interval], event_types: frozenset[str], line_numbers: bool = True
) -> str:
    """One row per landed line of several intervals (each file belongs to one), with `_interval_start`.

    Each line is parsed once: its JSON type, then every field in one multi-path
    extraction (`->>` per field would parse the line once per field). One scan
    over many days' files uses every core; a scan per day is mostly start-up.
    Numbering lines (`_line`, for quarantined records) makes the scan serial,
    about half the speed on two cores: without `line_numbers` it is NULL.
    """
    file_list = _sql_strings(list(files))
    bounds = ",\n            ".join(
        "('" + f.replace("'", "''") + f"', date '{i.start.isoformat()}', date '{i.end.isoformat()}')"
        for f, i in files.items()
    )
    landed = f"""
        with file_intervals (filename, _interval_start, _interval_end) as (
            values
                {bounds}
        ),
        scanned as (
            -- A plain scan keeps file order (DuckDB preserves insertion order), so
            -- row numbers over it are line numbers.
            select json, filename, {"row_number() over ()" if line_numbers else "null"} as _row
            from read_ndjson_objects({file_list}, filename = true, compression = 'gzip')
        )
        select
            json,
            filename,
            {"_row - min(_row) over (partition by filename) + 1" if line_numbers else "cast(null as bigint)"}
                as _line,
            _interval_start,
            _interval_end
        from scanned
        inner join file_intervals using (filename)
    """
    return classify_sql(landed, event_types)


# The reasons a record has no day: a file's extract quarantines these itself.
UNDATABLE_REASONS = frozenset(
    {
        "not_a_json_object",
        "oversized_record",
        "broken_line",
        "non_standard_json",
        "missing_event_time",
        "unparseable_event_time",
        "event_time_out_of_range",
    }
)


def classify_sql(landed: str, event_types: frozenset[str]) -> str:
    """Each record of `landed` (json, filename, _line, _interval_start, _interval_end) with its fields,
    its parsed local time and the reason it must be quarantined, or NULL.

    One rule for every stage: the loader classifies landed days with it, and a
    file's extract classifies the whole file with it before landing anything,
    so both agree on what a record is worth. A record with no interval (NULL
    bounds) cannot be outside one.
    """
    paths = "[" + ", ".join(f"'$.\"{c}\"'" for c in EVENT_COLUMNS) + "]"
    fields = ",\n".join(
        f"        case when _kind = 'OBJECT' then nullif(trim(_values[{i}]), '') end as {c}"
        for i, c in enumerate(EVENT_COLUMNS, start=1)
    )
    event_time = f"nullif(trim(_values[{EVENT_COLUMNS.index('event_time') + 1}]), '')"
    return f"""
    with landed as (
        {landed}
    ),
    parsed as (
        select
            *,
            json_type(json) as _kind,
            json_extract_string(json, {paths}) as _values,
            json_extract_string(json, '$.{BROKEN_LINE_KEY}') as _broken,
            json_extract(json, '$.{OVERSIZED_KEY}') as _oversized,
            -- NaN and Infinity are not JSON, though DuckDB's reader takes them: no warehouse's
            -- JSON type would. A cheap test first, then the token outside any string.
            (contains(json::varchar, 'NaN') or contains(json::varchar, 'Infinity'))
                and regexp_matches(regexp_replace(json::varchar, '"(?:[^"\\\\]|\\\\.)*"', '', 'g'),
                                   '(NaN|Infinity)') as _non_standard
        from landed
    ),
    typed as (
        select
            json,
            filename,
            _line,
            _interval_start,
            _interval_end,
            _kind,
            _broken,
            _oversized,
            _non_standard,
{fields},
            {local_time_sql(event_time)} as _event_time_local
        from parsed
    )
    select
        * exclude (_kind, _broken, _oversized, _non_standard, _interval_end),
        case
            when _kind <> 'OBJECT' then 'not_a_json_object'
            when _oversized is not null then 'oversized_record'
            when _broken is not null then 'broken_line'
            when _non_standard then 'non_standard_json'
            when event_time is null then 'missing_event_time'
            when _event_time_local is null then 'unparseable_event_time'
            when _event_time_local < timestamp '{EARLIEST_EVENT_TIME}'
                or _event_time_local >= timestamp '{LATEST_EVENT_TIME}' then 'event_time_out_of_range'
            when _event_time_local < _interval_start or _event_time_local >= _interval_end
                then 'event_time_outside_interval'
            when user_id is null then 'missing_user_id'
            when event_type is null then 'missing_event_type'
            when not list_contains({_sql_strings(event_types)}, lower(event_type)) then 'unknown_event_type'
            when miles_amount is not null and try_cast(miles_amount as double) is null
                then 'non_numeric_miles_amount'
            when not isfinite(try_cast(miles_amount as double)) then 'non_finite_miles_amount'
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
    """Replace `interval` (one day) of `schema.<source>` with what its manifest lists, atomically."""
    results = load_duckdb_days(
        bucket, source, [interval], database, schema, event_types, max_quarantine_ratio
    )
    return results[0]


# Days are loaded together until their landed (compressed) bytes reach this: one scan
# over many files uses every core, and DuckDB spills what does not fit its memory limit.
BATCH_BYTES = 256 * 1024 * 1024


def load_duckdb_days(
    bucket: Bucket,
    source: str,
    days: list[Interval],
    database: Path,
    schema: str = "raw",
    event_types: frozenset[str] = KNOWN_EVENT_TYPES,
    max_quarantine_ratio: float = 0.05,
    on_loaded: Callable[[LoadResult], None] | None = None,
) -> list[LoadResult]:
    """Replace each day of `schema.<source>` with what its manifest lists, in order.

    Every day is checked on its own (manifest, counts, quarantine threshold), as
    if loaded alone: days before the first bad one are committed, the bad one
    and those after it are not, and its error is raised. Good days are written
    in batches, one transaction each, so a load of a year is not 365 start-ups.
    """
    results: list[LoadResult] = []
    database.parent.mkdir(parents=True, exist_ok=True)
    con = engine.connect(str(database))
    try:
        for statement in _ddl(schema, source):
            con.execute(statement)

        def flush(batch: list[tuple[Interval, Manifest]]) -> tuple[list[LoadResult], BaseException | None]:
            return _load_batch(con, bucket, source, batch, schema, event_types, max_quarantine_ratio)

        batch: list[tuple[Interval, Manifest]] = []
        batch_bytes = 0
        failure: BaseException | None = None
        for day in days:
            try:
                manifest = read_manifest(bucket, source, day)
            except ManifestError as error:  # the days before it still load
                failure = error
                break
            batch.append((day, manifest))
            batch_bytes += manifest.bytes
            if batch_bytes >= BATCH_BYTES:
                done, failure = _load_batch(
                    con, bucket, source, batch, schema, event_types, max_quarantine_ratio
                )
                results += _report(done, on_loaded)
                batch, batch_bytes = [], 0
                if failure is not None:
                    break
        if batch:
            done, batch_failure = _load_batch(
                con, bucket, source, batch, schema, event_types, max_quarantine_ratio
            )
            results += _report(done, on_loaded)
            failure = batch_failure or failure  # a bad day in the batch comes before a missing manifest
    finally:
        con.close()
    if failure is not None:
        raise failure
    return results


def _report(done: list[LoadResult], on_loaded: Callable[[LoadResult], None] | None) -> list[LoadResult]:
    for result in done:
        log.info(
            "loaded %s %s: %d in, %d loaded, %d quarantined in %.2fs",
            result.source,
            result.interval,
            result.rows_in,
            result.loaded,
            result.quarantined,
            result.seconds,
        )
        if on_loaded is not None:
            on_loaded(result)
    return done


def _load_batch(
    con: duckdb.DuckDBPyConnection,
    bucket: Bucket,
    source: str,
    batch: list[tuple[Interval, Manifest]],
    schema: str,
    event_types: frozenset[str],
    max_quarantine_ratio: float,
) -> tuple[list[LoadResult], BaseException | None]:
    """Load the batch's days in one scan; commit the days before the first bad one.

    The scan inserts the good records straight into the table, inside the
    transaction, instead of classifying every line into a temporary table
    first (at 10M events that copy was half the load). A day whose loaded rows
    equal its manifest's count is reconciled by that alone. Only the other days
    (usually none) are read again, numbered, for their quarantined records and
    reasons; when one fails its checks, everything is rolled back and the days
    before it are loaded again on their own.
    """
    started = time.monotonic()
    raw, quarantine, loads = _tables(schema, source)
    files: dict[str, Interval] = {}
    for day, manifest in batch:
        prefix = partition_prefix(source, day)
        for part in manifest.parts:
            files[str(bucket.local_path(f"{prefix}/{part.name}"))] = day
    keys = [
        (
            day.start,
            hashlib.sha256(manifest.to_json()).hexdigest()[:16],
            dt.datetime.fromisoformat(manifest.extracted_at).astimezone(dt.UTC).replace(tzinfo=None),
        )
        for day, manifest in batch
    ]
    con.execute(
        "create or replace temp table batch_loads"
        " (_interval_start date, load_id varchar, landed_at timestamp)"
    )
    con.executemany("insert into batch_loads values (?, ?, ?)", keys)
    columns = ", ".join(EVENT_COLUMNS)
    results: list[LoadResult] = []
    try:
        con.execute("begin transaction")
        con.execute(f"delete from {raw} where _interval_start in (select _interval_start from batch_loads)")
        con.execute(
            f"delete from {quarantine} where _interval_start in (select _interval_start from batch_loads)"
        )
        loaded: dict[dt.date, int] = {}
        if files:
            # Rows go in scan order (files in manifest order, lines in file order: DuckDB preserves
            # insertion order), which keeps the table's layout identical across re-runs without a
            # sort of every row.
            con.execute(
                f"""
                insert into {raw}
                select {columns}, _event_time_local, json, _interval_start, filename, load_id, landed_at
                from ({classified_days_sql(files, event_types, line_numbers=False)}) as classified
                inner join batch_loads using (_interval_start)
                where reason is null
                """
            )
            loaded = dict(
                con.execute(
                    f"select _interval_start, count(*) from {raw}"
                    " where _interval_start in (select _interval_start from batch_loads) group by all"
                ).fetchall()
            )
        stats: dict[dt.date, tuple[int, dict[str, int]]] = {
            day.start: (loaded.get(day.start, 0), {}) for day, _ in batch
        }
        stated = {day.start: manifest.row_count for day, manifest in batch}
        flagged = {f: i for f, i in files.items() if loaded.get(i.start, 0) != stated[i.start]}
        if flagged:
            con.execute(
                "create or replace temp table quarantined as"
                f" select * from ({classified_days_sql(flagged, event_types)})"
            )
            stats.update({i.start: (0, {}) for i in flagged.values()})
            for start, reason, count in con.execute(
                "select _interval_start, coalesce(reason, ''), count(*) from quarantined group by all"
            ).fetchall():
                rows_in, reasons = stats[start]
                if reason:
                    reasons[reason] = count
                stats[start] = (rows_in + count, reasons)
            con.execute(
                f"""
                insert into {quarantine}
                select cast(json as varchar), reason, _interval_start, filename, load_id, landed_at
                from quarantined inner join batch_loads using (_interval_start)
                where reason is not null
                order by filename, _line
                """
            )
        # Records an extract quarantined for having no day join the quarantine of the day that owns them;
        # they were held to their extract's threshold, not to this day's.
        read_undated(con, bucket, source, [day for day, _ in batch])
        con.execute(
            f"""
            insert into {quarantine}
            select record, reason, _interval_start, source_file, load_id, landed_at
            from undated inner join batch_loads using (_interval_start)
            """
        )
        undated = undated_counts(con)
        seconds_each = (time.monotonic() - started) / max(len(batch), 1)
        for position, ((day, manifest), (_, load_id, landed_at)) in enumerate(zip(batch, keys, strict=True)):
            rows_in, reasons = stats[day.start]
            try:
                check_counts(source, day, manifest.row_count, rows_in, reasons, max_quarantine_ratio, bucket)
            except (ReconciliationError, QuarantineThresholdError) as error:
                if isinstance(error, QuarantineThresholdError):
                    # What would have been quarantined is kept for inspection, as when loading it alone.
                    write_quarantine(con, bucket, source, day, table="quarantined")
                con.execute("rollback")
                if position == 0:
                    return [], error
                done, _ = _load_batch(
                    con, bucket, source, batch[:position], schema, event_types, max_quarantine_ratio
                )
                return done, error
            if sum(reasons.values()):
                write_quarantine(con, bucket, source, day, table="quarantined")
            else:
                bucket.delete(f"{quarantine_prefix(source, day)}/{QUARANTINE_FILE}")
            extra = undated.get(day.start, {})
            rows_in += sum(extra.values())
            reasons = {r: reasons.get(r, 0) + extra.get(r, 0) for r in sorted({*reasons, *extra})}
            quarantined = sum(reasons.values())
            con.execute(
                f"insert or replace into {loads} values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [source, day.start, day.end, load_id, manifest.run_id, rows_in, rows_in - quarantined,
                 quarantined, landed_at],
            )  # fmt: skip
            results.append(
                LoadResult(source, day, rows_in, rows_in - quarantined, quarantined, load_id,
                           manifest.bytes, seconds_each, reasons)
            )  # fmt: skip
        con.execute("commit")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("rollback")
        raise
    finally:
        con.execute("drop table if exists quarantined")
        con.execute("drop table if exists undated")
    return results, None


QUARANTINE_FILE = "quarantine.jsonl.gz"


def quarantine_prefix(source: str, interval: Interval) -> str:
    return f"quarantine/{checked_name(source, 'source')}/{interval.partition}"


def undated_prefix(source: str, interval: Interval | None = None) -> str:
    """Where extracts put the records they quarantined for having no day, by the day that loads them.

    A file's extract quarantines its undatable records under the file's first
    day, the stream under the day a message arrived: the load of that day
    copies them into `<source>_quarantine`, so every quarantined record, whatever
    the stage that refused it, is in the warehouse beside its reason.
    """
    base = f"quarantine/{checked_name(source, 'source')}/undated"
    return f"{base}/{interval.partition}" if interval is not None else base


def read_undated(con: duckdb.DuckDBPyConnection, bucket: Bucket, source: str, days: list[Interval]) -> None:
    """Fill the temp table `undated(_interval_start, reason, record, source_file, line)` for `days`."""
    con.execute(
        "create or replace temp table undated"
        " (_interval_start date, reason varchar, record varchar, source_file varchar, line bigint)"
    )
    for day in days:
        files = [
            str(bucket.local_path(key))
            for key in bucket.list(undated_prefix(source, day))
            if key.endswith(".jsonl.gz")
        ]
        if files:
            con.execute(
                "insert into undated select ?, reason, record, source_file, line from read_json(?,"
                " format = 'newline_delimited', maximum_object_size = 67108864, filename = true,"
                " columns = {reason: 'varchar', record: 'varchar', source_file: 'varchar', line: 'bigint'})"
                " order by filename, line",
                [day.start, files],
            )


def undated_counts(con: duckdb.DuckDBPyConnection) -> dict[dt.date, dict[str, int]]:
    """Reasons and counts of the temp table `undated`, by day."""
    counts: dict[dt.date, dict[str, int]] = {}
    for start, reason, count in con.execute(
        "select _interval_start, reason, count(*) from undated group by all order by all"
    ).fetchall():
        counts.setdefault(start, {})[reason] = count
    return counts


def write_quarantine(
    con: duckdb.DuckDBPyConnection, bucket: Bucket, source: str, interval: Interval, table: str = "classified"
) -> None:
    """Mirror the interval's quarantined records, with reasons, into the bucket."""
    write_quarantined_records(
        con,
        bucket,
        f"{quarantine_prefix(source, interval)}/{QUARANTINE_FILE}",
        f"select reason, cast(json as varchar), filename, _line from {table} "
        "where reason is not null and _interval_start = ? order by filename, _line",
        [interval.start],
    )


def write_quarantined_records(
    con: duckdb.DuckDBPyConnection, bucket: Bucket, key: str, query: str, params: list[object]
) -> int:
    """Write (reason, record, file, line) rows as gzipped JSON lines at `key` (or remove it when none).

    Streamed in batches into one gzip member, so a bad day with millions of
    quarantined records costs their compressed size, not their rows, in memory.
    """
    cursor = con.execute(query, params)
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
    return written
