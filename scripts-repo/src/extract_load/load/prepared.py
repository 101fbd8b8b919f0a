"""One landed interval, classified and written as two files a warehouse's bulk load reads.

BigQuery and Snowflake load files, not rows: both run the same classification
as the DuckDB load first, in an in-process DuckDB over the landed parts, so
every warehouse quarantines the same records for the same reasons, and the
counts are reconciled (against the manifest) before anything is sent. What
comes out is the interval's accepted rows and its quarantined records (with
what an extract quarantined for having no day), each in a deterministic file:
the same landing always gives the same bytes, so a re-run loads the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from extract_load import engine
from extract_load.contract import Contract
from extract_load.intervals import Interval
from extract_load.landing.bucket import Bucket
from extract_load.landing.manifest import Manifest, partition_prefix, read_manifest
from extract_load.load.classify import classified_sql
from extract_load.load.quarantine import read_undated, undated_counts, write_quarantine
from extract_load.load.raw_tables import landed_at, load_id
from extract_load.load.reconcile import LoadResult, check_counts

FileFormat = Literal["json", "parquet"]
# DuckDB's COPY options for each: gzipped JSON lines for BigQuery, Parquet for Snowflake.
COPY_OPTIONS: dict[FileFormat, str] = {
    "json": "format json, compression gzip",
    "parquet": "format parquet, compression zstd",
}
SUFFIX: dict[FileFormat, str] = {"json": ".jsonl.gz", "parquet": ".parquet"}


@dataclass(frozen=True)
class PreparedInterval:
    manifest: Manifest
    load_id: str
    rows_in: int
    reasons: dict[str, int]
    rows: Path  # the accepted rows: the raw table's columns, every value as text
    quarantine: Path  # the refused records: the quarantine table's columns

    @property
    def quarantined(self) -> int:
        return sum(self.reasons.values())

    @property
    def loaded(self) -> int:
        return self.rows_in - self.quarantined

    def result(self, source: str, interval: Interval, seconds: float) -> LoadResult:
        """What a load of this interval reports once it is committed."""
        return LoadResult(
            source,
            interval,
            self.rows_in,
            self.loaded,
            self.quarantined,
            self.load_id,
            self.manifest.bytes,
            seconds,
            self.reasons,
        )


def prepare_interval(
    bucket: Bucket,
    source: str,
    interval: Interval,
    contract: Contract,
    max_quarantine_ratio: float,
    directory: Path,
    file_format: FileFormat,
) -> PreparedInterval:
    """Classify the interval's landed parts into `directory`; raise before writing if the counts fail.

    Raises ReconciliationError or QuarantineThresholdError (nothing to load),
    ManifestError (nothing landed to load).
    """
    manifest = read_manifest(bucket, source, interval)
    prefix = partition_prefix(source, interval)
    files = [str(bucket.local_path(f"{prefix}/{p.name}")) for p in manifest.parts]
    day_load_id = load_id(manifest)
    # `_loaded_at` as naive UTC text: what each warehouse reads as the same instant.
    params = [interval.start.isoformat(), day_load_id, landed_at(manifest).isoformat(sep=" ")]
    suffix, options = SUFFIX[file_format], COPY_OPTIONS[file_format]
    rows, rejected = directory / f"rows{suffix}", directory / f"quarantine{suffix}"
    reasons: dict[str, int] = {}
    rows_in = 0
    con = engine.connect()
    try:
        if files:
            con.execute(f"create temp table classified as {classified_sql(files, interval, contract)}")
            rows_in = con.execute("select count(*) from classified").fetchone()[0]  # type: ignore[index]
            reasons = dict(
                con.execute(
                    "select reason, count(*) from classified where reason is not null group by 1"
                ).fetchall()
            )
        else:
            con.execute(
                "create temp table classified (json json, reason varchar, filename varchar, _line bigint)"
            )
        if files:
            columns = ", ".join(contract.columns)
            # JSON lines embed the record as an object (BigQuery's JSON column); Parquet holds its text
            # (Snowflake's COPY parses it into a VARIANT).
            record = "json" if file_format == "json" else "cast(json as varchar)"
            local_time = (
                ""
                if contract.is_snapshot
                else " strftime(_event_time_local, '%Y-%m-%d %H:%M:%S.%f') as _event_time_local,"
            )
            con.execute(
                f"""
                copy (
                    select {columns},{local_time}
                           {record} as _record, ?::varchar as _interval_start,
                           parse_filename(filename) as _source_file, ?::varchar as _load_id,
                           ?::varchar as _loaded_at
                    from classified where reason is null order by filename, _line
                ) to '{rows}' ({options})
                """,
                params,
            )
            # Mirrored to the bucket before the checks: over the threshold, it is what to inspect.
            write_quarantine(con, bucket, source, interval)
        elif file_format == "json":
            rows.write_bytes(b"")  # a load job of no rows still replaces the partition
        check_counts(source, interval, manifest.row_count, rows_in, reasons, max_quarantine_ratio, bucket)
        # What an extract quarantined for having no day joins this day's quarantine (see undated_prefix).
        read_undated(con, bucket, source, [interval])
        con.execute(
            f"""
            copy (
                select _record, reason, ?::varchar as _interval_start, _source_file,
                       ?::varchar as _load_id, ?::varchar as _loaded_at
                from (
                    select cast(json as varchar) as _record, reason, parse_filename(filename) as _source_file,
                           _line, 0 as stage
                    from classified where reason is not null
                    union all
                    select record, reason, source_file, line, 1 from undated
                )
                order by stage, _source_file, _line
            ) to '{rejected}' ({options})
            """,
            params,
        )
        for reason, count in undated_counts(con).get(interval.start, {}).items():
            reasons[reason] = reasons.get(reason, 0) + count
            rows_in += count
    finally:
        con.close()
    return PreparedInterval(manifest, day_load_id, rows_in, reasons, rows, rejected)
