"""Loading one landed interval into BigQuery, replacing exactly that partition.

The interval is classified and reconciled first (`load.prepared`, shared
with Snowflake), so every warehouse quarantines the same records for the
same reasons. The accepted rows and the quarantined rows are then written to
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

from extract_load.contract import EVENTS, Contract
from extract_load.intervals import Interval
from extract_load.landing.bucket import Bucket
from extract_load.load.prepared import prepare_interval
from extract_load.load.raw_tables import QUARANTINE, bigquery_schema, raw_columns
from extract_load.load.reconcile import LoadResult

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
    ready = f"loadready/{source}/{interval.partition}"
    with tempfile.TemporaryDirectory() as tmp:
        prepared = prepare_interval(
            bucket, source, interval, contract, max_quarantine_ratio, Path(tmp), "json"
        )
        bucket.write_bytes(f"{ready}/rows.jsonl.gz", prepared.rows.read_bytes())
        bucket.write_bytes(f"{ready}/quarantine.jsonl.gz", prepared.quarantine.read_bytes())

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
    return prepared.result(source, interval, time.monotonic() - started)
