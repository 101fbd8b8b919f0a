"""Where refused records live in the bucket, beside the landed days they were refused from.

`quarantine/<source>/dt=.../` mirrors a loaded day's quarantine table;
`quarantine/<source>/undated/dt=.../` holds what an extract refused for
having no day, until the load of the day named there takes it in.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import duckdb

from extract_load.intervals import Interval
from extract_load.landing.bucket import Bucket
from extract_load.names import checked_name

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
