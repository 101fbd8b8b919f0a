"""Files as a source: CSV, JSON lines, xlsx and Parquet, from a path or a URL.

A file drop (an app export, a Kaggle-style dataset) covers many days. An
extract takes the rows of each day in its interval and lands them like any
other source, so loading, quarantine and reconciliation are shared. Nothing in
the file is lost: broken CSV/JSON lines and rows without a usable event_time
are landed as records that the load quarantines with a reason, in the
partition of the file's first day, so every run over the file's full range
accounts for every line exactly once.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import json
import logging
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import duckdb

from extract_load import engine
from extract_load.bucket import Bucket
from extract_load.intervals import Interval
from extract_load.landing import Manifest, PartitionWriter
from extract_load.schema import BROKEN_LINE_KEY, local_time_sql

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("event_time", "user_id", "event_type")


class FileSourceError(ValueError):
    """The file cannot be read as a source (format, or a required column missing)."""


@contextmanager
def local_copy(location: str) -> Iterator[Path]:
    """A local path for `location`; URLs are downloaded (streamed) to a temporary file."""
    if urlparse(location).scheme in ("http", "https"):
        import requests

        from extract_load.http_source import make_session

        suffix = "".join(Path(urlparse(location).path).suffixes)
        with tempfile.TemporaryDirectory() as tmp, make_session() as session:
            target = Path(tmp) / f"download{suffix}"
            with session.get(location, stream=True) as response:
                response.raise_for_status()
                with target.open("wb") as handle:
                    for chunk in response.iter_content(chunk_size=1 << 20):
                        handle.write(chunk)
            del requests
            yield target
        return
    path = Path(location)
    if not path.is_file():
        raise FileSourceError(f"{location}: no such file")
    yield path


def verify_and_digest(path: Path, origin: str) -> str:
    """The file's sha256 prefix, after proving a gzip file decompresses to its end.

    DuckDB reads a truncated gzip stream without complaint, so a drop cut off
    mid-transfer would otherwise land as a smaller but plausible file, its
    tail lost without a trace. Python's gzip checks every member's CRC and
    length; reading costs one streaming pass, never the file in memory.
    """
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    if path.name.lower().endswith(".gz"):
        try:
            with gzip.open(path, "rb") as stream:
                while stream.read(1 << 20):
                    pass
        except EOFError as exc:
            raise FileSourceError(f"{origin}: gzip stream is truncated (the file ends mid-stream)") from exc
        except (gzip.BadGzipFile, zlib.error) as exc:
            raise FileSourceError(f"{origin}: corrupt gzip data ({exc})") from exc
    return digest.hexdigest()[:16]


def _format(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    for suffix, kind in (
        (".csv", "csv"),
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "jsonl"),
        (".parquet", "parquet"),
        (".xlsx", "xlsx"),
    ):
        if name.endswith(suffix):
            return kind
    raise FileSourceError(f"{path.name}: unsupported file type (csv, jsonl, parquet or xlsx)")


def require_columns(columns: list[str], origin: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise FileSourceError(
            f"{origin}: required column(s) {', '.join(missing)} missing (has {', '.join(columns)})"
        )


def stage_file(con: duckdb.DuckDBPyConnection, path: Path, origin: str) -> None:
    """Create table `rows_in(_line, record json)`: one row per data line of the file."""
    kind = _format(path)
    src = str(path).replace("'", "''")
    if kind == "csv":
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            header = [c.strip() for c in next(csv.reader(handle), [])]
        require_columns(header, origin)
        # RFC 4180 dialect and the header's columns stated, not sniffed: broken
        # lines must not change how the rest of the file parses.
        columns = "{" + ", ".join("'" + c.replace("'", "''") + "': 'VARCHAR'" for c in header) + "}"
        dialect = (
            f"header = true, auto_detect = false, columns = {columns}, "
            "delim = ',', quote = '\"', escape = '\"'"
        )
        con.execute(
            f"""
            create temp table parsed as
            select * from read_csv(
                '{src}', {dialect},
                store_rejects = true, rejects_table = 'csv_rejects', rejects_scan = 'csv_scans'
            )
            """
        )
        con.execute(
            f"""
            create temp table rows_in as
            select cast(null as bigint) as _line, to_json(parsed) as record from parsed
            union all
            -- DuckDB records one reject per error; a line is one record, whatever its errors.
            select line, json_object('{BROKEN_LINE_KEY}', any_value(csv_line),
                                     'error', string_agg(error_message, '; ' order by error_message))
            from csv_rejects group by line
            """
        )
    elif kind == "jsonl":
        con.execute(
            f"""
            create temp table lines as
            select row_number() over () as _line, line
            from read_csv('{src}', header = false, columns = {{'line': 'VARCHAR'}}, delim = '\\x01',
                          quote = '', escape = '', strict_mode = false)
            """
        )
        con.execute(
            f"""
            create temp table rows_in as
            select _line,
                   case when json_valid(line) then json(line)
                        else json_object('{BROKEN_LINE_KEY}', line) end as record
            from lines where trim(coalesce(line, '')) <> ''
            """
        )
        keys = con.execute(
            "select distinct unnest(json_keys(record)) from rows_in where json_type(record) = 'OBJECT'"
        ).fetchall()
        require_columns([k[0] for k in keys], origin)
    elif kind == "parquet":
        columns = [c[0] for c in con.execute(f"describe select * from read_parquet('{src}')").fetchall()]
        require_columns(columns, origin)
        con.execute(
            f"create temp table rows_in as select null::bigint as _line, to_json(p) as record "
            f"from read_parquet('{src}') as p"
        )
    else:
        _stage_xlsx(con, path, origin)


def _stage_xlsx(con: duckdb.DuckDBPyConnection, path: Path, origin: str) -> None:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    sheet = book.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    header = [str(h).strip() if h is not None else "" for h in next(rows, ())]
    require_columns(header, f"{origin} (sheet {sheet.title})")
    con.execute("create temp table rows_in (_line bigint, record json)")
    batch = []
    for number, values in enumerate(rows, start=2):
        if all(v is None for v in values):
            continue
        # Cells beyond the header are kept under a positional name, never dropped.
        record = {
            (header[i] if i < len(header) and header[i] else f"column_{i + 1}"): (
                v.isoformat(sep=" ") if isinstance(v, dt.datetime) else v
            )
            for i, v in enumerate(values)
            if i < len(header) or v is not None
        }
        batch.append((number, json.dumps(record, default=str)))
        if len(batch) >= 10_000:
            con.executemany("insert into rows_in values (?, ?)", batch)
            batch.clear()
    if batch:
        con.executemany("insert into rows_in values (?, ?)", batch)
    book.close()


def extract_file(
    location: str, bucket: Bucket, interval: Interval | None, source: str, part_rows: int = 250_000
) -> list[Manifest]:
    """Land each day of `interval` (default: every day the file covers); one manifest per day."""
    con = engine.connect()
    with local_copy(location) as path:
        digest = verify_and_digest(path, location)
        stage_file(con, path, location)
    try:
        return land_staged(con, bucket, interval, source, f"{location}#sha256={digest}", part_rows)
    finally:
        con.close()


def land_staged(
    con: duckdb.DuckDBPyConnection,
    bucket: Bucket,
    interval: Interval | None,
    source: str,
    origin: str,
    part_rows: int = 250_000,
) -> list[Manifest]:
    """Land the staged `rows_in(_line, record)` table, a partition per local day."""
    con.execute(
        f"""
        create temp table dated as
        select _line, record,
               cast({local_time_sql("nullif(trim(record ->> 'event_time'), '')")} as date) as day
        from rows_in
        """
    )
    first_day, last_day = con.execute("select min(day), max(day) from dated").fetchone()  # type: ignore[misc]
    if interval is None:
        if first_day is None:
            raise FileSourceError(f"{origin}: no row has a usable event_time; give --start to land them")
        interval = Interval(first_day, last_day + dt.timedelta(days=1))
    home = first_day or interval.start
    manifests = []
    for day in interval.days():
        # Undatable rows and broken lines belong to the first day, so they land exactly once.
        undated = "or day is null" if day.start == home else ""
        writer = PartitionWriter(bucket, source, day, origin=origin, part_rows=part_rows)
        cursor = con.execute(
            f"select record::varchar from dated where day = ? {undated} order by _line nulls last, day",
            [day.start],
        )
        while batch := cursor.fetchmany(10_000):
            writer.write_lines(r[0] for r in batch)
            writer.end_page(None, checkpoint=False)
        manifests.append(writer.commit())
    return manifests
