"""A PostgreSQL table as a source: the rows changed in each data interval, read in one consistent snapshot.

The contract's time column is the table's change time (an `updated_at` the
application sets on every insert and update). A row belongs to the local day
of that time, so each landed day holds every row last changed on that day,
and an update moves a row's newest version to the day it changed: the raw
table is a change log, one version per key and day, which staging reduces to
the latest version per key.

One extract reads all its days in one read-only REPEATABLE READ transaction,
so every day sees the same committed state, and pages each day by the key
(keyset, never OFFSET: a page costs the same at row 10 as at row 10 million).
A transaction that commits after its rows' day was extracted (a late commit)
is caught because every run starts `lookback_days` before its first day (or
before the watermark) and lands those days again, whole.

The watermark (`state/<source>/watermark.json` in the bucket) records the
first day not yet landed and the snapshot's time. It moves only after every
day's manifest is committed, by compare-and-swap, and never backwards: a run
that fails leaves it where it was, and the next run redoes the same days.

Hard deletes are invisible to a change log: a table whose rows are deleted
needs a soft-delete column (`deleted_at`, which also moves `updated_at`), or
a snapshot contract (no time column): then each run lands the whole table as
the snapshot of one day, the load replaces the raw table with it, and a
deleted row is simply absent from the next snapshot.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from extract_load.contract import SOURCE_UTC_OFFSET_HOURS
from extract_load.intervals import Interval
from extract_load.landing.bucket import Bucket
from extract_load.landing.leases import Lease
from extract_load.landing.manifest import ConcurrentCommitError, Manifest, PartitionWriter, partition_prefix
from extract_load.names import checked_name

log = logging.getLogger(__name__)


class WatermarkError(ConcurrentCommitError):
    """Another run moved the watermark while this one landed: its days are committed, the mark is theirs."""


@dataclass(frozen=True)
class TableSource:
    """What to read: a table, its change-time column, its key, and how far back each run starts again."""

    table: str  # schema.table or table
    time_column: str | None  # None: the whole table, as one day's snapshot
    key: tuple[str, ...]
    lookback_days: int = 1
    page_size: int = 10_000

    def __post_init__(self) -> None:
        for part in self.table.split("."):
            checked_name(part, "table")
        if self.time_column is not None:
            checked_name(self.time_column, "time column")
        if not self.key:
            raise ValueError(
                f"{self.table}: a key (the contract's primary_key, or `key:`) is needed to page by"
            )
        for column in self.key:
            checked_name(column, "key column")
        if self.lookback_days < 0 or self.page_size < 1:
            raise ValueError(f"{self.table}: lookback_days must be >= 0 and page_size >= 1")


def watermark_key(source: str) -> str:
    return f"state/{checked_name(source, 'source')}/watermark.json"


@dataclass(frozen=True)
class Watermark:
    next_day: dt.date  # the first local day no run has landed yet
    snapshot_at: str  # the database's time when the snapshot that landed it was taken
    generation: str = "0"


def read_watermark(bucket: Bucket, source: str) -> Watermark | None:
    data, generation = bucket.read_versioned(watermark_key(source))
    if data is None:
        return None
    saved = json.loads(data)
    return Watermark(dt.date.fromisoformat(saved["next_day"]), saved["snapshot_at"], generation)


def _json_value(value: Any) -> Any:
    """A column value as the raw layer keeps it: text for what JSON cannot hold exactly."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # NaN/Infinity are not JSON
    if isinstance(value, decimal.Decimal):
        return str(value)  # exact, as the database holds it
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | memoryview | bytes):
        return value.hex() if isinstance(value, memoryview | bytes) else str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def _local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time())


def _pages(cursor: Any, source: TableSource, day: Interval) -> Iterator[list[dict[str, Any]]]:
    """The day's rows, page by page, in key order."""
    from psycopg import sql

    table = sql.SQL(".").join(sql.Identifier(part) for part in source.table.split("."))
    key = sql.SQL(", ").join(sql.Identifier(c) for c in source.key)
    after: tuple[Any, ...] | None = None
    while True:
        if source.time_column is None:  # a snapshot: every row
            query = sql.SQL("select * from {table} where true").format(table=table)
            params: list[Any] = []
        else:
            query = sql.SQL("select * from {table} where {time} >= %s and {time} < %s").format(
                table=table, time=sql.Identifier(source.time_column)
            )
            params = [_local_midnight(day.start), _local_midnight(day.end)]
        if after is not None:
            placeholders = sql.SQL(", ").join(sql.Placeholder() * len(after))
            query += sql.SQL(" and ({key}) > ({values})").format(key=key, values=placeholders)
            params += list(after)
        query += sql.SQL(" order by {key} limit {limit}").format(key=key, limit=sql.Literal(source.page_size))
        cursor.execute(query, params)
        columns = [c.name for c in cursor.description]
        rows = cursor.fetchall()
        if not rows:
            return
        yield [{c: _json_value(v) for c, v in zip(columns, row, strict=True)} for row in rows]
        if len(rows) < source.page_size:
            return
        last = rows[-1]
        after = tuple(last[columns.index(c)] for c in source.key)


@dataclass(frozen=True)
class TableExtract:
    manifests: list[Manifest]
    snapshot_at: str
    watermark: Watermark | None  # none for a snapshot: each run is whole

    def as_dict(self) -> dict[str, object]:
        return {
            "days": len(self.manifests),
            "rows": sum(m.row_count for m in self.manifests),
            "watermark": self.watermark.next_day.isoformat() if self.watermark else None,
            "snapshot_at": self.snapshot_at,
        }


def extract_table(
    dsn: str,
    bucket: Bucket,
    source_name: str,
    source: TableSource,
    interval: Interval | None = None,
    part_rows: int = 250_000,
    origin: str = "postgresql",
) -> TableExtract:
    """Land each local day of `interval` (default: from the watermark to today), all in one snapshot.

    Every run starts `lookback_days` earlier than asked, so late commits land.
    """
    import psycopg

    with psycopg.connect(dsn, autocommit=False) as connection:
        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        connection.read_only = True
        with connection.cursor() as cursor:
            # Naive times in the table are the source's local time, as in every export; a bound compares
            # with a zoned column in that zone too. ISO sign: +08 is east of UTC.
            cursor.execute(f"set local time zone interval '{SOURCE_UTC_OFFSET_HOURS:+03d}:00' hour to minute")
            # The snapshot is taken here, at the transaction's first query. Today is the server's
            # current_date in the session's (the source's) zone: the driver does not carry an interval
            # time zone over to Python, so the date of `now()` there is UTC's, a day behind the source's
            # from 16:00 to 24:00 UTC.
            cursor.execute("select now(), current_date")
            snapshot_at, today = cursor.fetchone()  # type: ignore[misc]
            if source.time_column is None:
                # The table as it is now: the snapshot of the day asked for (the last of a range), or today.
                interval = (
                    interval.days()[-1]
                    if interval is not None
                    else Interval(today, today + dt.timedelta(days=1))
                )
                days = [interval]
            else:
                previous = read_watermark(bucket, source_name)
                if interval is None:
                    first = min(previous.next_day, today) if previous is not None else today
                    interval = Interval(first, today + dt.timedelta(days=1))
                days = Interval(interval.start - dt.timedelta(days=source.lookback_days), interval.end).days()
            manifests = []
            for day in days:
                with Lease(bucket, partition_prefix(source_name, day)) as lease:
                    writer = PartitionWriter(bucket, source_name, day, origin, part_rows, lease=lease)
                    for page in _pages(cursor, source, day):
                        writer.write(page)
                        writer.end_page(None, checkpoint=False)  # a new run reads a new snapshot: no resume
                    manifests.append(writer.commit())
                log.info("extracted %s %s: %d rows", source_name, day, manifests[-1].row_count)
        connection.rollback()  # read only: nothing to commit
    if source.time_column is None:
        return TableExtract(manifests, snapshot_at.isoformat(), None)
    mark = _advance(bucket, source_name, interval.end, snapshot_at.isoformat())
    return TableExtract(manifests, snapshot_at.isoformat(), mark)


def _advance(bucket: Bucket, source: str, next_day: dt.date, snapshot_at: str) -> Watermark:
    """Move the watermark to `next_day` once every day before it is committed; never backwards."""
    current = read_watermark(bucket, source)
    if current is not None and current.next_day >= next_day:
        return current
    expected = current.generation if current is not None else "0"
    body = json.dumps({"next_day": next_day.isoformat(), "snapshot_at": snapshot_at}, sort_keys=True)
    generation = bucket.write_if(watermark_key(source), body.encode(), expected)
    if generation is None:
        raise WatermarkError(
            f"{source}: the watermark moved while this run landed its days (they are committed); "
            "the next run starts from the newer mark"
        )
    return Watermark(next_day, snapshot_at, generation)


def check_table(dsn: str, source: TableSource, timeout: float) -> None:
    """Connect and name the table's columns, reading no row."""
    import psycopg
    from psycopg import sql

    table = sql.SQL(".").join(sql.Identifier(part) for part in source.table.split("."))
    with psycopg.connect(dsn, connect_timeout=max(1, int(timeout))) as connection:
        connection.execute(sql.SQL("select * from {table} limit 0").format(table=table))
