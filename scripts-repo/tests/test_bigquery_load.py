"""The BigQuery load: files in GCS (emulator) and the job configuration the
client sends, captured by a local HTTP endpoint standing in for the API."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from extract_load.intervals import Interval
from extract_load.landing.bucket import LocalBucket, open_bucket
from extract_load.landing.manifest import PartitionWriter
from extract_load.load.bigquery import BigQueryTarget, load_bigquery

DAY = Interval(dt.date(2025, 3, 5), dt.date(2025, 3, 6))


@contextmanager
def bigquery_endpoint() -> Iterator[tuple[str, list[dict]]]:
    """Records every job insert and reports each job as done."""
    jobs: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _reply(self, body: dict) -> None:
            payload = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            jobs.append(body)
            self._reply({**body, "status": {"state": "DONE"}, "statistics": {"load": {"outputRows": "0"}}})

        def do_GET(self) -> None:
            job_id = self.path.split("/jobs/")[1].split("?")[0]
            job = next(j for j in jobs if j["jobReference"]["jobId"] == job_id)
            self._reply({**job, "status": {"state": "DONE"}})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", jobs
    finally:
        server.shutdown()
        server.server_close()


def test_each_interval_replaces_one_partition_from_gcs(gcs_emulator: str) -> None:
    bucket = open_bucket("gs://landing/bq")
    good = {"event_time": "2025-03-05 10:00:00", "user_id": "u_1", "event_type": "like", "gender": "female"}
    writer = PartitionWriter(bucket, "events", DAY, origin="test")
    writer.write([good, {**good, "user_id": "u_2"}, {**good, "user_id": ""}])
    writer.commit()
    with bigquery_endpoint() as (url, jobs):
        client = bigquery.Client(
            project="test-project", credentials=AnonymousCredentials(), client_options={"api_endpoint": url}
        )
        result = load_bigquery(
            bucket, "events", DAY, BigQueryTarget.parse("bigquery:///raw"), client, max_quarantine_ratio=0.5
        )
        again = load_bigquery(
            bucket, "events", DAY, BigQueryTarget.parse("bigquery:///raw"), client, max_quarantine_ratio=0.5
        )
    assert (result.rows_in, result.loaded, result.quarantined) == (3, 2, 1)

    loads = [job["configuration"]["load"] for job in jobs]
    assert [load["destinationTable"]["tableId"] for load in loads[:2]] == [
        "events$20250305",
        "events_quarantine$20250305",
    ]
    assert {load["destinationTable"]["datasetId"] for load in loads} == {"raw"}
    assert {load["destinationTable"]["projectId"] for load in loads} == {"test-project"}
    first = loads[0]
    assert first["writeDisposition"] == "WRITE_TRUNCATE" and first["createDisposition"] == "CREATE_IF_NEEDED"
    assert first["sourceFormat"] == "NEWLINE_DELIMITED_JSON" and first["maxBadRecords"] == 0
    assert first["timePartitioning"] == {"type": "DAY", "field": "_interval_start"}
    assert first["schemaUpdateOptions"] == ["ALLOW_FIELD_ADDITION"]  # a column the contract gains
    assert first["sourceUris"] == ["gs://landing/bq/loadready/events/dt=2025-03-05/rows.jsonl.gz"]
    fields = {f["name"]: f["type"] for f in first["schema"]["fields"]}
    assert (
        fields["_record"] == "JSON"
        and fields["_event_time_local"] == "TIMESTAMP"
        and fields["gender"] == "STRING"
    )

    rows = [
        json.loads(line)
        for line in gzip.decompress(
            bucket.read_bytes("loadready/events/dt=2025-03-05/rows.jsonl.gz")
        ).splitlines()
    ]
    assert [r["user_id"] for r in rows] == ["u_1", "u_2"] and rows[0]["_interval_start"] == "2025-03-05"
    quarantined = gzip.decompress(bucket.read_bytes("loadready/events/dt=2025-03-05/quarantine.jsonl.gz"))
    assert json.loads(quarantined.splitlines()[0])["reason"] == "missing_user_id"
    # The re-run sends the same jobs for the same files: the partition ends up the same.
    assert loads[2:] == loads[:2] and again.load_id == result.load_id


def test_bigquery_refuses_a_local_bucket(tmp_path) -> None:
    with pytest.raises(ValueError, match="loads from GCS"):
        load_bigquery(
            LocalBucket(tmp_path), "events", DAY, BigQueryTarget.parse("bigquery://p/raw"), object()
        )


def test_undatable_records_an_extract_quarantined_join_their_days_quarantine(gcs_emulator: str) -> None:
    bucket = open_bucket("gs://landing/bq-undated")
    good = {"event_time": "2025-03-05 10:00:00", "user_id": "u_1", "event_type": "like"}
    writer = PartitionWriter(bucket, "events", DAY, origin="test")
    writer.write([good, {**good, "user_id": "u_2"}])
    writer.commit()
    undated = [
        {"reason": "missing_event_time", "record": json.dumps({"user_id": "u_3"}), "source_file": "drop.csv",
         "line": 7},
        {"reason": "broken_line", "record": json.dumps({"_broken_line": "{x"}), "source_file": "events/0",
         "line": 41},
    ]  # fmt: skip
    body = "".join(json.dumps(u) + "\n" for u in undated).encode()
    bucket.write_bytes("quarantine/events/undated/dt=2025-03-05/drop.jsonl.gz", gzip.compress(body))
    with bigquery_endpoint() as (url, _):
        client = bigquery.Client(
            project="test-project", credentials=AnonymousCredentials(), client_options={"api_endpoint": url}
        )
        # Not held to the day's threshold: they were held to their extract's.
        result = load_bigquery(bucket, "events", DAY, BigQueryTarget.parse("bigquery:///raw"), client)
    assert (result.rows_in, result.loaded, result.quarantined) == (4, 2, 2)
    assert result.reasons == {"missing_event_time": 1, "broken_line": 1}
    quarantined = [
        json.loads(line)
        for line in gzip.decompress(
            bucket.read_bytes("loadready/events/dt=2025-03-05/quarantine.jsonl.gz")
        ).splitlines()
    ]
    assert [(q["reason"], q["_source_file"], q["_interval_start"]) for q in quarantined] == [
        ("missing_event_time", "drop.csv", "2025-03-05"),
        ("broken_line", "events/0", "2025-03-05"),
    ]
