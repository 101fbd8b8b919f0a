"""A load's quarantine: the records classification refused, and those an extract refused for having no day."""

from __future__ import annotations

import datetime as dt

import duckdb

from extract_load.intervals import Interval
from extract_load.landing.bucket import Bucket
from extract_load.landing.quarantine import (
    QUARANTINE_FILE,
    quarantine_prefix,
    undated_prefix,
    write_quarantined_records,
)


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
