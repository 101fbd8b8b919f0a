"""Loading one landed interval into BigQuery, replacing exactly that partition.

The same classification as the DuckDB load runs first, in an in-process
DuckDB over the landed parts, so both warehouses quarantine the same records
for the same reasons and the counts are reconciled before anything is sent.
The accepted rows and the quarantined rows are then written to
`loadready/<source>/dt=.../` in the bucket, and one load job each replaces the
interval's partition (`table$YYYYMMDD`, WRITE_TRUNCATE) of the raw table and
of its quarantine table. Files are deterministic, so a re-run writes the same
partition again.

What is verified here: the files, the counts and the job configuration the
client sends (against a local HTTP endpoint). What only production verifies:
that BigQuery accepts that configuration and its schema.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extract_load import engine
from extract_load.contract import EVENTS, Contract
from extract_load.intervals import Interval
from extract_load.landing.bucket import Bucket
from extract_load.landing.manifest import partition_prefix, read_manifest
from extract_load.load.classify import classified_sql
from extract_load.load.quarantine import read_undated, undated_counts, write_quarantine
from extract_load.load.raw_tables import QUARANTINE, bigquery_schema, load_id, raw_columns
from extract_load.load.reconcile import LoadResult, check_counts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BigQueryTarget:
    project: str | None
    dataset: str
    location: str | None = None

    @classmethod
    def parse(cls, url: str) -> BigQueryTarget:
        """`bigquery://project/dataset` or `bigquery:///dataset` (project from the environment)."""
        rest = url.removeprefix("bigquery://")
        project, _, dataset = rest.partition("/")
        if not dataset:
            raise ValueError(f"{url!r}: expected bigquery://[project]/dataset")
        return cls(project or None, dataset.strip("/"))


def load_job_config(schema: list[Any], source: str) -> Any:
    """Replace one day partition; never skip a bad record (there are none left by now)."""
    from google.cloud import bigquery

    return bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
        schema=schema,
        time_partitioning=bigquery.TimePartitioning(
            type_=bigquery.TimePartitioningType.DAY, field="_interval_start"
        ),
        max_bad_records=0,
        ignore_unknown_values=False,
        # A column the contract gained (schema drift) is added to the table by the load that first has it.
        schema_update_options=[bigquery.SchemaUpdateOption.ALLOW_FIELD_ADDITION],
        labels={"pipeline": "extract-load", "source": source.replace("_", "-")},
    )


def load_bigquery(
    bucket: Bucket,
    source: str,
    interval: Interval,
    target: BigQueryTarget,
    client: Any = None,
    contract: Contract = EVENTS,
    max_quarantine_ratio: float = 0.05,
) -> LoadResult:
    started = time.monotonic()
    if not bucket.url.startswith("gs://"):
        raise ValueError(f"BigQuery loads from GCS; the bucket is {bucket.url}")
    manifest = read_manifest(bucket, source, interval)
    prefix = partition_prefix(source, interval)
    files = [str(bucket.local_path(f"{prefix}/{p.name}")) for p in manifest.parts]
    day_load_id = load_id(manifest)
    landed_at = manifest.extracted_at
    ready = f"loadready/{source}/{interval.partition}"
    reasons: dict[str, int] = {}
    rows_in = 0
    params = [interval.start.isoformat(), day_load_id, landed_at]
    with tempfile.TemporaryDirectory() as tmp:
        con = engine.connect()
        clean, rejected = Path(tmp) / "rows.jsonl.gz", Path(tmp) / "quarantine.jsonl.gz"
        if files:
            con.execute(f"create temp table classified as {classified_sql(files, interval, contract)}")
            rows_in = con.execute("select count(*) from classified").fetchone()[0]  # type: ignore[index]
            reasons = dict(
                con.execute(
                    "select reason, count(*) from classified where reason is not null group by 1"
                ).fetchall()
            )
            columns = ", ".join(contract.columns)
            local_time = (
                ""
                if contract.is_snapshot
                else "\n                           strftime(_event_time_local, '%Y-%m-%d %H:%M:%S.%f')"
                " as _event_time_local,"
            )
            con.execute(
                f"""
                copy (
                    select {columns},{local_time}
                           json as _record, ?::varchar as _interval_start,
                           parse_filename(filename) as _source_file, ?::varchar as _load_id,
                           ?::varchar as _loaded_at
                    from classified where reason is null order by filename, _line
                ) to '{clean}' (format json, compression gzip)
                """,
                params,
            )
            write_quarantine(con, bucket, source, interval)
        else:
            con.execute(
                "create temp table classified (json json, reason varchar, filename varchar, _line bigint)"
            )
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
            ) to '{rejected}' (format json, compression gzip)
            """,
            params,
        )
        for reason, count in undated_counts(con).get(interval.start, {}).items():
            reasons[reason] = reasons.get(reason, 0) + count
            rows_in += count
        if not files:
            clean.write_bytes(b"")
        con.close()
        quarantined = sum(reasons.values())
        bucket.write_bytes(f"{ready}/rows.jsonl.gz", clean.read_bytes())
        bucket.write_bytes(f"{ready}/quarantine.jsonl.gz", rejected.read_bytes())

    if client is None:
        from google.cloud import bigquery

        client = bigquery.Client(project=target.project, location=target.location)
    project = target.project or client.project
    day = interval.start.strftime("%Y%m%d")
    for table, file, table_schema in (
        (source, "rows.jsonl.gz", bigquery_schema(raw_columns(contract))),
        (f"{source}_quarantine", "quarantine.jsonl.gz", bigquery_schema(QUARANTINE)),
    ):
        job = client.load_table_from_uri(
            f"{bucket.url}/{ready}/{file}",
            f"{project}.{target.dataset}.{table}" + ("" if contract.is_snapshot else f"${day}"),
            job_config=load_job_config(table_schema, source),
            job_id_prefix=f"extract_load_{source}_{day}_",
        )
        job.result()
        log.info("BigQuery job %s replaced %s$%s", job.job_id, table, day)
    seconds = time.monotonic() - started
    return LoadResult(
        source,
        interval,
        rows_in,
        rows_in - quarantined,
        quarantined,
        day_load_id,
        manifest.bytes,
        seconds,
        reasons,
    )
