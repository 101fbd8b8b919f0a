"""Loading landed days into DuckDB's raw tables, replacing each day.

The raw table keeps every field as the source sent it plus the whole record as
JSON, so columns a later export adds are never lost. Records that cannot be
used (see `classify`) go to the quarantine table and to
`quarantine/<source>/dt=.../` in the bucket, each with a reason. The load
refuses to commit unless rows read = loaded + quarantined = manifest rows, or
when the quarantined share passes the threshold.

Everything written is derived from the landed data and its manifest (the load
id is a hash of the manifest, `_loaded_at` is when the interval was landed), so
loading the same landing again leaves the warehouse exactly as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from extract_load import engine
from extract_load.contract import EVENTS, Contract
from extract_load.intervals import Interval
from extract_load.landing.bucket import Bucket
from extract_load.landing.manifest import Manifest, ManifestError, partition_prefix, read_manifest
from extract_load.landing.quarantine import QUARANTINE_FILE, quarantine_prefix
from extract_load.load.classify import classified_days_sql
from extract_load.load.quarantine import read_undated, undated_counts, write_quarantine
from extract_load.load.raw_tables import duckdb_ddl, landed_at, load_id, tables
from extract_load.load.reconcile import (
    LoadResult,
    QuarantineThresholdError,
    ReconciliationError,
    check_counts,
)

log = logging.getLogger(__name__)


def load_duckdb(
    bucket: Bucket,
    source: str,
    interval: Interval,
    database: Path,
    schema: str = "raw",
    contract: Contract = EVENTS,
    max_quarantine_ratio: float = 0.05,
) -> LoadResult:
    """Replace `interval` (one day) of `schema.<source>` with what its manifest lists, atomically."""
    results = load_duckdb_days(bucket, source, [interval], database, schema, contract, max_quarantine_ratio)
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
    contract: Contract = EVENTS,
    max_quarantine_ratio: float = 0.05,
    on_loaded: Callable[[LoadResult], None] | None = None,
) -> list[LoadResult]:
    """Replace each day of `schema.<source>` with what its manifest lists, in order.

    Every day is checked on its own (manifest, counts, quarantine threshold), as
    if loaded alone: days before the first bad one are committed, the bad one
    and those after it are not, and its error is raised. Good days are written
    in batches, one transaction each, so a load of a year is not 365 start-ups.

    A snapshot source's raw table is its newest landed snapshot: of the days
    asked for, only the last is loaded, and it replaces the whole table unless
    the table already holds a newer one (then nothing changes), so a reload of
    any day leaves the table as a full rebuild would.
    """
    results: list[LoadResult] = []
    database.parent.mkdir(parents=True, exist_ok=True)
    con = engine.connect(str(database))
    try:
        for statement in duckdb_ddl(schema, source, contract):
            con.execute(statement)
        if contract.is_snapshot and days:
            raw = tables(schema, source)[0]
            held = con.execute(f"select max(_interval_start) from {raw}").fetchone()[0]  # type: ignore[index]
            latest = max(days, key=lambda day: day.start)
            days = [] if held is not None and held > latest.start else [latest]
            if not days:
                log.info("%s: the raw table holds the snapshot of %s, newer than %s", source, held, latest)

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
                    con, bucket, source, batch, schema, contract, max_quarantine_ratio
                )
                results += _report(done, on_loaded)
                batch, batch_bytes = [], 0
                if failure is not None:
                    break
        if batch:
            done, batch_failure = _load_batch(
                con, bucket, source, batch, schema, contract, max_quarantine_ratio
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
    contract: Contract,
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
    raw, quarantine, loads = tables(schema, source)
    files: dict[str, Interval] = {}
    for day, manifest in batch:
        prefix = partition_prefix(source, day)
        for part in manifest.parts:
            files[str(bucket.local_path(f"{prefix}/{part.name}"))] = day
    keys = [(day.start, load_id(manifest), landed_at(manifest)) for day, manifest in batch]
    con.execute(
        "create or replace temp table batch_loads"
        " (_interval_start date, load_id varchar, landed_at timestamp)"
    )
    con.executemany("insert into batch_loads values (?, ?, ?)", keys)
    results: list[LoadResult] = []
    try:
        con.execute("begin transaction")
        # A day replaces its day; a snapshot replaces everything (its raw table is one snapshot).
        replaced = (
            ""
            if contract.is_snapshot
            else " where _interval_start in (select _interval_start from batch_loads)"
        )
        con.execute(f"delete from {raw}{replaced}")
        con.execute(f"delete from {quarantine}{replaced}")
        loaded = _insert_accepted(con, raw, files, contract)
        stats: dict[dt.date, tuple[int, dict[str, int]]] = {
            day.start: (loaded.get(day.start, 0), {}) for day, _ in batch
        }
        stated = {day.start: manifest.row_count for day, manifest in batch}
        flagged = {f: i for f, i in files.items() if loaded.get(i.start, 0) != stated[i.start]}
        if flagged:
            stats.update(_insert_refused(con, quarantine, flagged, contract))
        undated = _insert_undated(con, bucket, source, quarantine, [day for day, _ in batch])
        seconds_each = (time.monotonic() - started) / max(len(batch), 1)
        for position, ((day, manifest), (_, day_load_id, day_landed_at)) in enumerate(
            zip(batch, keys, strict=True)
        ):
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
                    con, bucket, source, batch[:position], schema, contract, max_quarantine_ratio
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
                [source, day.start, day.end, day_load_id, manifest.run_id, rows_in, rows_in - quarantined,
                 quarantined, day_landed_at],
            )  # fmt: skip
            results.append(
                LoadResult(source, day, rows_in, rows_in - quarantined, quarantined, day_load_id,
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


def _insert_accepted(
    con: duckdb.DuckDBPyConnection, raw: str, files: dict[str, Interval], contract: Contract
) -> dict[dt.date, int]:
    """Insert the accepted records of `files` (in the temp table batch_loads' days); rows loaded per day.

    Rows go in scan order (files in manifest order, lines in file order: DuckDB
    preserves insertion order), which keeps the table's layout identical across
    re-runs without a sort of every row. `_source_file` is the landed part's
    name, as in every warehouse: the path it was read from differs by machine
    (a worker's download cache), and a reload elsewhere would change it.
    """
    if not files:
        return {}
    columns = ", ".join([*contract.columns, *(() if contract.is_snapshot else ("_event_time_local",))])
    con.execute(
        f"""
        insert into {raw} ({columns}, _record, _interval_start, _source_file, _load_id, _loaded_at)
        select {columns}, json, _interval_start, parse_filename(filename), load_id, landed_at
        from ({classified_days_sql(files, contract, line_numbers=False)}) as classified
        inner join batch_loads using (_interval_start)
        where reason is null
        """
    )
    return dict(
        con.execute(
            f"select _interval_start, count(*) from {raw}"
            " where _interval_start in (select _interval_start from batch_loads) group by all"
        ).fetchall()
    )


def _insert_refused(
    con: duckdb.DuckDBPyConnection, quarantine: str, flagged: dict[str, Interval], contract: Contract
) -> dict[dt.date, tuple[int, dict[str, int]]]:
    """Read the flagged days again, numbered, into the temp table `quarantined`; insert their refused records.

    Returns each flagged day's records read and its reasons' counts.
    """
    classified = classified_days_sql(flagged, contract)
    con.execute(f"create or replace temp table quarantined as select * from ({classified})")
    stats: dict[dt.date, tuple[int, dict[str, int]]] = {i.start: (0, {}) for i in flagged.values()}
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
        select cast(json as varchar), reason, _interval_start, parse_filename(filename), load_id, landed_at
        from quarantined inner join batch_loads using (_interval_start)
        where reason is not null
        order by filename, _line
        """
    )
    return stats


def _insert_undated(
    con: duckdb.DuckDBPyConnection, bucket: Bucket, source: str, quarantine: str, days: list[Interval]
) -> dict[dt.date, dict[str, int]]:
    """Records an extract quarantined for having no day join the quarantine of the day that owns them.

    They were held to their extract's threshold, not to this day's: returned
    apart, by day and reason, to be added to the day's counts after its checks.
    """
    read_undated(con, bucket, source, days)
    con.execute(
        f"""
        insert into {quarantine}
        select record, reason, _interval_start, source_file, load_id, landed_at
        from undated inner join batch_loads using (_interval_start)
        """
    )
    return undated_counts(con)
