"""Files as a source: CSV, JSON lines, xlsx and Parquet, from a path or a URL.

A file drop (an app export, a Kaggle-style dataset) covers many days. An
extract takes the rows of each day in its interval and lands them like any
other source, so loading, quarantine and reconciliation are shared. Nothing in
the file is lost, and nothing undatable distorts a day:

- a record that has no day (a broken CSV/JSON line, not a JSON object, no or
  an unparseable event_time) is quarantined by the extract itself, with its
  reason and line, under `quarantine/<source>/undated/<file digest>/`; the
  extract whose interval holds the file's first day owns them, so a run over
  the file's full range counts each exactly once;
- a record too large to parse (over 1 MiB) is set aside whole, its bytes
  kept, and quarantined as `oversized_record`; the parser's record count is
  checked against an independent count of the file's records (records.py);
- every record is classified once, by the loader's rule, before anything
  lands: when the file as a whole would quarantine more than the threshold,
  nothing lands and the extract says so with the numbers (each day is still
  held to the threshold again when it loads);
- the extract reconciles: records read = landed + quarantined + outside the
  interval asked for.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import duckdb

from extract_load import engine
from extract_load.contract import (
    BROKEN_LINE_KEY,
    DEFAULT_POLICY,
    EVENTS,
    OVERSIZED_KEY,
    QuarantinePolicy,
    local_today,
)
from extract_load.intervals import Interval
from extract_load.landing.bucket import Bucket
from extract_load.landing.leases import Lease
from extract_load.landing.manifest import Manifest, PartitionWriter, partition_prefix
from extract_load.landing.quarantine import undated_prefix, write_quarantined_records
from extract_load.load.classify import classify_sql
from extract_load.load.reconcile import QuarantineThresholdError, ReconciliationError
from extract_load.redaction import public_location
from extract_load.sources.records import MAX_RECORD_BYTES, Oversized, parser_limit, scan_csv, scan_jsonl

log = logging.getLogger(__name__)


# A file's range, when not given, is every day from its first record to its
# last, each landed (an empty day replaces what an earlier drop held). One
# record dated 2015 in a 2025 file made 3,654 empty partitions: past this many
# days, an extract asks for --start/--end (or a larger --max-days) instead.
MAX_FILE_DAYS = 400


class FileSourceError(ValueError):
    """The file cannot be read as a source (format, or a required column missing)."""


@contextmanager
def local_copy(location: str) -> Iterator[Path]:
    """A local path for `location`; URLs are downloaded (streamed) to a temporary file."""
    if urlparse(location).scheme in ("http", "https"):
        import requests

        from extract_load.sources.http import make_session

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


def require_columns(
    columns: list[str], origin: str, required: tuple[str, ...] = EVENTS.required_columns
) -> None:
    """A file without a column its contract requires is refused whole, before anything is staged."""
    missing = [c for c in required if c not in columns]
    if missing:
        raise FileSourceError(
            f"{origin}: required column(s) {', '.join(missing)} missing (has {', '.join(columns)})"
        )


def stage_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    origin: str,
    workdir: Path,
    kept_at: Callable[[int], str | None] = lambda line: None,
    limit: int = MAX_RECORD_BYTES,
    required: tuple[str, ...] = EVENTS.required_columns,
) -> list[Oversized]:
    """Create table `rows_in(_line, record json)`: one row per data record of the file.

    Text formats are first scanned on their own (records.py): records over
    `limit` are set aside whole in `workdir` (returned, for the caller to keep
    at `kept_at(line)`) and stand in `rows_in` as a stub, and the parser's count
    must equal the scan's, or nothing lands. A reader's error is the file's.
    """
    try:
        return _stage_file(con, path, origin, workdir, kept_at, limit, required)
    except (duckdb.Error, csv.Error, UnicodeDecodeError) as exc:
        raise FileSourceError(f"{origin}: cannot be read: {exc}") from exc


def _stage_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    origin: str,
    workdir: Path,
    kept_at: Callable[[int], str | None] = lambda line: None,
    limit: int = MAX_RECORD_BYTES,
    required: tuple[str, ...] = EVENTS.required_columns,
) -> list[Oversized]:
    kind = _format(path)
    scan = None
    if kind == "csv":
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            header = [c.strip() for c in next(csv.reader(handle), [])]
        require_columns(header, origin, required)
        scan = scan_csv(path, workdir, limit)
        src = str(scan.path).replace("'", "''")
        # RFC 4180 dialect and the header's columns stated, not sniffed: broken
        # lines must not change how the rest of the file parses.
        types = "{" + ", ".join("'" + c.replace("'", "''") + "': 'VARCHAR'" for c in header) + "}"
        dialect = (
            f"header = true, auto_detect = false, columns = {types}, "
            f"delim = ',', quote = '\"', escape = '\"', max_line_size = {parser_limit(limit)}"
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
        if scan.oversized:
            con.executemany(
                "insert into rows_in values (?, ?)",
                [(big.line, json.dumps(big.stub(kept_at(big.line)))) for big in scan.oversized],
            )
    elif kind == "jsonl":
        scan = scan_jsonl(path, workdir, limit, kept_at)
        src = str(scan.path).replace("'", "''")
        con.execute(
            f"""
            create temp table lines as
            select row_number() over () as _line, line
            from read_csv('{src}', header = false, columns = {{'line': 'VARCHAR'}}, delim = '\\x01',
                          quote = '', escape = '', strict_mode = false,
                          max_line_size = {parser_limit(limit)})
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
        require_columns([k[0] for k in keys if k[0] != OVERSIZED_KEY], origin, required)
    elif kind == "parquet":
        src = str(path).replace("'", "''")
        columns = [c[0] for c in con.execute(f"describe select * from read_parquet('{src}')").fetchall()]
        require_columns(columns, origin, required)
        con.execute(
            f"create temp table rows_in as select null::bigint as _line, to_json(p) as record "
            f"from read_parquet('{src}') as p"
        )
    else:
        _stage_xlsx(con, path, origin, required)
    if scan is None:
        return []
    parsed = con.execute("select count(*) from rows_in").fetchone()[0]  # type: ignore[index]
    if parsed != scan.records:
        counter = "Python's CSV reader" if kind == "csv" else "its lines"
        raise ReconciliationError(
            f"{origin}: the file holds {scan.records} records (counted by {counter}) but the parser read "
            f"{parsed}; nothing was landed"
        )
    return scan.oversized


def _stage_xlsx(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    origin: str,
    required: tuple[str, ...] = EVENTS.required_columns,
) -> None:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    sheet = book.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    header = [str(h).strip() if h is not None else "" for h in next(rows, ())]
    require_columns(header, f"{origin} (sheet {sheet.title})", required)
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


@dataclass(frozen=True)
class FileExtract:
    """What one extract of a file did with every record it read."""

    source: str
    origin: str
    manifests: list[Manifest]
    rows_in: int
    quarantined: int
    outside_interval: int
    reasons: dict[str, int] = field(default_factory=dict)
    quarantine: str | None = None

    @property
    def landed(self) -> int:
        return sum(m.row_count for m in self.manifests)

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "origin": self.origin,
            "rows_in": self.rows_in,
            "landed": self.landed,
            "days": len(self.manifests),
            "quarantined": self.quarantined,
            "outside_interval": self.outside_interval,
            "reasons": self.reasons,
            "quarantine": self.quarantine,
        }


def extract_file(
    location: str,
    bucket: Bucket,
    interval: Interval | None,
    source: str,
    part_rows: int = 250_000,
    policy: QuarantinePolicy = DEFAULT_POLICY,
    max_days: int = MAX_FILE_DAYS,
) -> FileExtract:
    """Land each day of `interval` (default: every day the file covers); one manifest per day."""
    con = engine.connect()
    try:
        with local_copy(location) as path, tempfile.TemporaryDirectory() as work:
            digest = verify_and_digest(path, location)
            keep = f"quarantine/{source}/oversized/{digest}"
            oversized = stage_file(
                con,
                path,
                location,
                Path(work),
                lambda line: f"{bucket.url}/{keep}/line-{line}.bin",
                required=policy.contract.required_columns,
            )
            # A record too large to parse is kept whole, before anything names it.
            for big in oversized:
                bucket.write_bytes(f"{keep}/line-{big.line}.bin", big.path.read_bytes())
        origin = f"{public_location(location)}#sha256={digest}"
        return land_staged(con, bucket, interval, source, origin, part_rows, policy, max_days)
    finally:
        con.close()


@dataclass(frozen=True)
class StagedFile:
    """What a staged file holds, judged by the loader's rules: records, days, reasons."""

    rows: int
    first_day: dt.date | None
    last_day: dt.date | None
    reasons: dict[str, int]
    months: dict[str, int] = field(default_factory=dict)  # datable records per YYYY-MM
    undatable_reasons: frozenset[str] = EVENTS.undatable_reasons  # the contract's

    def interval(self, origin: str, max_days: int = MAX_FILE_DAYS) -> Interval | None:
        """Every day from the first record to the last, refused past `max_days` with where the records are."""
        if self.first_day is None or self.last_day is None:
            return None
        span = (self.last_day - self.first_day).days + 1
        if span > max_days:
            months = list(self.months.items())
            edges = months if len(months) <= 6 else [*months[:3], ("...", 0), *months[-3:]]
            shown = ", ".join(f"{m}: {n:,}" if m != "..." else m for m, n in edges)
            raise FileSourceError(
                f"{origin}: its records span {self.first_day} to {self.last_day}, {span:,} days, more than "
                f"--max-days {max_days} (records per month: {shown}). A stray date would land every day "
                "between as an empty partition: give --start/--end for the days to land (the others are "
                "counted as outside the interval), or a larger --max-days"
            )
        return Interval(self.first_day, self.last_day + dt.timedelta(days=1))

    def as_dict(self) -> dict[str, object]:
        end = self.last_day + dt.timedelta(days=1) if self.last_day else None
        undatable = sum(n for r, n in self.reasons.items() if r in self.undatable_reasons)
        return {
            "rows": self.rows,
            "first_day": self.first_day.isoformat() if self.first_day else None,
            "end_day": end.isoformat() if end else None,
            "undatable": undatable,
            "reasons": self.reasons,
        }


def classify_staged(
    con: duckdb.DuckDBPyConnection, origin: str, policy: QuarantinePolicy, snapshot_day: dt.date | None = None
) -> StagedFile:
    """Classify every staged record once (temp table `classified`, with its local `day` or NULL).

    A snapshot's records have no time of their own: each usable one belongs to `snapshot_day`.
    """
    name = (Path(urlparse(origin).path).name or origin).replace("'", "''")
    day = "cast(_event_time_local as date)" if snapshot_day is None else f"date '{snapshot_day.isoformat()}'"
    records = (
        f"select record as json, '{name}' as filename, _line, "
        "cast(null as date) as _interval_start, cast(null as date) as _interval_end from rows_in"
    )
    # Only what landing needs is kept: the record, its line, its day and its reason (the
    # extracted fields would make the table several times wider, and it is read once a day).
    con.execute(
        "create temp table classified as select json, filename, _line, reason, "
        f"case when reason in {_sql_tuple(policy.contract.undatable_reasons)} then null "
        f"else {day} end as day "
        f"from ({classify_sql(records, policy.contract)})"
    )
    rows, first_day, last_day = con.execute(  # type: ignore[misc]
        "select count(*), min(day), max(day) from classified"
    ).fetchone()
    reasons = dict(
        con.execute(
            "select reason, count(*) from classified where reason is not null group by 1 order by 1"
        ).fetchall()
    )
    months = dict(
        con.execute(
            "select strftime(day, '%Y-%m'), count(*) from classified "
            "where day is not null group by 1 order by 1"
        ).fetchall()
    )
    return StagedFile(int(rows), first_day, last_day, reasons, months, policy.contract.undatable_reasons)


def _sql_tuple(values: frozenset[str]) -> str:
    return "(" + ", ".join("'" + v + "'" for v in sorted(values)) + ")"


def describe_file(
    location: str, policy: QuarantinePolicy = DEFAULT_POLICY, max_days: int = MAX_FILE_DAYS
) -> StagedFile:
    """What a file drop holds, without landing anything: a run's range, and what it would quarantine."""
    con = engine.connect()
    try:
        with local_copy(location) as path, tempfile.TemporaryDirectory() as work:
            verify_and_digest(path, location)
            stage_file(con, path, location, Path(work), required=policy.contract.required_columns)
        today = dt.date.fromisoformat(local_today()) if policy.contract.is_snapshot else None
        staged = classify_staged(con, public_location(location), policy, today)
    finally:
        con.close()
    staged.interval(public_location(location), max_days)  # the range a run would land, or why not
    return staged


class ExportThresholdError(QuarantineThresholdError):
    """The file as a whole would quarantine more than the threshold; nothing was landed."""


def land_staged(
    con: duckdb.DuckDBPyConnection,
    bucket: Bucket,
    interval: Interval | None,
    source: str,
    origin: str,
    part_rows: int = 250_000,
    policy: QuarantinePolicy = DEFAULT_POLICY,
    max_days: int = MAX_FILE_DAYS,
) -> FileExtract:
    """Land the staged `rows_in(_line, record)` table, a partition per local day (see the module)."""
    if policy.contract.is_snapshot:
        # A snapshot is the source as it is now: the snapshot of the day asked for (the last of a
        # range: a scheduler's backfill cannot read the past), or of the day it is taken.
        interval = interval.days()[-1] if interval is not None else Interval.parse(local_today())
    snapshot_day = interval.start if policy.contract.is_snapshot and interval is not None else None
    staged = classify_staged(con, origin, policy, snapshot_day)
    rows_in, first_day, reasons = staged.rows, staged.first_day, staged.reasons
    undated = {r: n for r, n in reasons.items() if r in staged.undatable_reasons}
    if interval is None:
        # A file with no datable record at all still has its undatable ones loaded, on the day it arrived.
        interval = staged.interval(origin, max_days) or Interval.parse(local_today())
    # Undatable records belong to the extract whose interval holds the file's first day (or, with
    # none, the first day asked for): a run over the file's range quarantines each exactly once,
    # and the load of that day copies them into the warehouse's quarantine table.
    home = Interval.parse((first_day or interval.start).isoformat())
    owns_undated = interval.start <= home.start < interval.end
    digest = hashlib.sha256(origin.encode()).hexdigest()[:16]
    bad = sum(reasons.values())
    if rows_in and bad / rows_in > policy.max_ratio:
        # Kept for inspection outside every load's path: nothing of this file may reach the warehouse.
        refused = f"quarantine/{source}/refused/{digest}.jsonl.gz"
        write_quarantined_records(
            con, bucket, refused,
            "select reason, cast(json as varchar), filename, _line from classified "
            "where reason is not null order by _line nulls last",
            [],
        )  # fmt: skip
        raise ExportThresholdError(
            f"{source} {origin}: {bad} of {rows_in} records ({bad / rows_in:.1%}) would be quarantined, "
            f"over the {policy.max_ratio:.1%} threshold for the file as a whole; reasons {reasons}. "
            f"Nothing was landed; the records that would be quarantined are in {bucket.url}/{refused}"
        )
    bucket.delete(f"quarantine/{source}/refused/{digest}.jsonl.gz")
    quarantine = None
    if owns_undated:
        key = f"{undated_prefix(source, home)}/{digest}.jsonl.gz"
        # A re-sent file whose first day moved leaves no copy of its undatable records at the old day.
        for stale in bucket.list(undated_prefix(source)):
            if stale.endswith(f"/{digest}.jsonl.gz") and stale != key:
                bucket.delete(stale)
        if write_quarantined_records(
            con, bucket, key,
            "select reason, cast(json as varchar), filename, _line from classified "
            "where day is null order by _line nulls last",
            [],
        ):  # fmt: skip
            quarantine = f"{bucket.url}/{key}"
    manifests = []
    for day in interval.days():
        with Lease(bucket, partition_prefix(source, day)) as lease:
            writer = PartitionWriter(bucket, source, day, origin=origin, part_rows=part_rows, lease=lease)
            cursor = con.execute(
                "select json::varchar from classified where day = ? order by _line nulls last", [day.start]
            )
            while batch := cursor.fetchmany(10_000):
                writer.write_lines(r[0] for r in batch)
                writer.end_page(None, checkpoint=False)
            manifests.append(writer.commit())
    quarantined = sum(undated.values()) if owns_undated else 0
    dated_outside = con.execute(
        "select count(*) from classified where day is not null and (day < ? or day >= ?)",
        [interval.start, interval.end],
    ).fetchone()[0]  # type: ignore[index]
    outside = dated_outside + sum(undated.values()) - quarantined
    result = FileExtract(
        source, origin, manifests, rows_in, quarantined, outside, undated if owns_undated else {}, quarantine
    )
    if result.landed + result.quarantined + result.outside_interval != rows_in:
        raise ReconciliationError(
            f"{source} {origin}: read {rows_in} records, landed {result.landed} + quarantined "
            f"{result.quarantined} + outside the interval {result.outside_interval}"
        )
    log.info(
        "extracted %s from %s: %d records, %d landed in %d days, %d quarantined %s, %d outside %s",
        source, origin, rows_in, result.landed, len(manifests), quarantined, undated, outside, interval,
    )  # fmt: skip
    return result
