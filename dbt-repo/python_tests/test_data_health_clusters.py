"""data-health as clusters run it: BigQuery's metadata and one partition, dbt results kept in a bucket.

The bucket is the GCS client against the emulator (real HTTP). BigQuery is
the stand-in of bigquery_standin.py: see there for what it can and cannot show.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from bigquery_standin import DuckDBBackedBigQuery
from test_data_health import samples

from conftest import PROJECT_DIR, insert_raw, raw_row
from data_health.artifacts import ArtifactStore
from data_health.collect import DataHealthCollector
from warehouses.bigquery import BigQueryWarehouse

BIN = Path(sys.executable).parent


@pytest.fixture
def datasets(tmp_path: Path) -> Path:
    """What dbt builds in BigQuery, in DuckDB: fct_events partitioned by event_date."""
    path = tmp_path / "bq.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema raw; create schema core; create schema analytics")
        con.execute("create table raw.events as select 1 as x from range(7)")
        con.execute(
            "create table core.fct_events (event_id varchar, event_time_utc timestamp, event_date date)"
        )
        con.execute(
            """insert into core.fct_events values
            ('a', '2025-03-01 10:00:00', '2025-03-01'),
            ('b', '2025-03-02 08:30:00', '2025-03-02'),
            ('c', '2025-03-02 07:00:00', '2025-03-02'),
            -- a bad clock on one device: must not make stale data look fresh
            ('d', '2099-01-01 00:00:00', '2099-01-01')"""
        )
        con.execute("create table analytics.not_a_platform_table as select 1 as x")
    return path


def test_bigquery_reads_row_counts_from_metadata_and_one_partition_for_freshness(
    datasets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_HEALTH_NOW", "2025-03-03T08:30:00+00:00")
    client = DuckDBBackedBigQuery(datasets)
    got = samples(
        DataHealthCollector(BigQueryWarehouse(client, maximum_bytes_billed=10**8), target="bigquery")
    )
    table = (("table", "core.fct_events"),)
    assert got[("platform_data_health_warehouse_up", ())] == 1
    assert got[("platform_data_freshness_lag_seconds", table)] == 24 * 3600
    assert got[("platform_warehouse_rows", table)] == 4
    assert got[("platform_warehouse_rows", (("table", "raw.events"),))] == 7
    assert not any(labels == (("table", "analytics.not_a_platform_table"),) for _, labels in got)
    assert got[("platform_warehouse_bytes", ())] > 0
    # One query, on the newest believable partition (the year-2099 one is skipped).
    assert [params["day"] for _, params in client.queries] == [dt.date(2025, 3, 2)]


def test_bigquery_is_read_at_most_once_per_refresh_while_the_lag_follows_the_clock(
    datasets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = DuckDBBackedBigQuery(datasets)
    collector = DataHealthCollector(
        BigQueryWarehouse(client), target="bigquery", refresh=dt.timedelta(minutes=5)
    )
    table = (("table", "core.fct_events"),)
    monkeypatch.setenv("DATA_HEALTH_NOW", "2025-03-03T08:30:00+00:00")
    assert samples(collector)[("platform_data_freshness_lag_seconds", table)] == 24 * 3600
    monkeypatch.setenv("DATA_HEALTH_NOW", "2025-03-04T08:30:00+00:00")
    assert samples(collector)[("platform_data_freshness_lag_seconds", table)] == 48 * 3600
    assert len(client.queries) == 1


def test_a_project_dbt_has_not_built_yet_reports_no_tables_and_no_freshness(tmp_path: Path) -> None:
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    client = DuckDBBackedBigQuery(empty)
    got = samples(DataHealthCollector(BigQueryWarehouse(client), target="bigquery"))
    assert got[("platform_data_health_warehouse_up", ())] == 1
    assert not [name for name, _ in got if name.startswith("platform_data_freshness")]
    assert client.queries == []


def test_dbt_pods_keep_their_results_in_the_bucket_and_data_health_counts_them(
    gcs: str, warehouse: Path, tmp_path: Path
) -> None:
    start = dt.datetime(2025, 3, 1, 9)
    insert_raw(warehouse, [raw_row(start + dt.timedelta(hours=i), f"u{i % 3}", kind=i) for i in range(12)])
    env = {
        **os.environ,
        "DBT_DUCKDB_PATH": str(warehouse),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
        "DBT_ARTIFACTS_URL": "gs://artifacts/dbt",
    }
    # What a Cosmos pod runs in a cluster: its command is the wrapper, its arguments dbt's command line.
    command = [str(BIN / "dbt-keep-artifacts"), "dbt", "build", "--select", "stg_events",
               "--exclude-resource-type", "unit_test",
               "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "kept 1 dbt result file(s) in gs://artifacts/dbt/" in result.stderr

    from google.cloud import storage

    names = [blob.name for blob in storage.Client().list_blobs("artifacts", prefix="dbt/")]
    assert len(names) == 1 and names[0].endswith("/run_results.json"), names

    store = ArtifactStore("gs://artifacts/dbt")
    got = samples(DataHealthCollector(UnreachableWarehouse(), store, target="bigquery"))

    def status(kind: str, value: str) -> float:
        labels = (("resource_type", kind), ("status", value), ("target", "bigquery"))
        return got.get(("platform_dbt_results", labels), 0)

    assert status("model", "success") == 1 and status("test", "pass") >= 3
    assert status("test", "fail") == 0 and status("model", "error") == 0
    assert got[("platform_dbt_last_run_timestamp_seconds", (("target", "bigquery"),))] > time.time() - 600

    # A failed build: dbt's exit code passes through and its results are kept and counted.
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    failing = subprocess.run(
        command, env={**env, "DBT_DUCKDB_PATH": str(empty)}, capture_output=True, text=True, timeout=600
    )
    assert failing.returncode == 1, failing.stdout[-3000:]
    assert "kept 1 dbt result file(s)" in failing.stderr
    got = samples(DataHealthCollector(UnreachableWarehouse(), store, target="bigquery"))
    assert status("model", "error") == 1 and status("model", "success") == 0

    # A bucket that does not exist: the upload is logged, dbt's (successful) code is kept.
    broken = subprocess.run(
        command, env={**env, "DBT_ARTIFACTS_URL": "gs://no-such-bucket/dbt"},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert broken.returncode == 0 and "could not keep dbt results in gs://no-such-bucket/dbt" in broken.stderr


class UnreachableWarehouse:
    """A warehouse that cannot be reached: the dbt metrics must not depend on it."""

    def read(self, now: dt.datetime) -> None:
        raise ConnectionError("warehouse unreachable in this test")


def test_the_artifact_listing_and_cache_stay_bounded_as_runs_accumulate(gcs: str) -> None:
    """Only the day folders within the window are listed, and what leaves the window leaves the cache."""
    from google.cloud import storage

    bucket = storage.Client().bucket("artifacts")
    today = dt.datetime.now(dt.UTC).date()
    document = '{"metadata": {"generated_at": "2025-03-01T00:00:00Z"}, "results": []}'
    folders = {"today": today, "three days ago": today - dt.timedelta(days=3),
               "a month ago": today - dt.timedelta(days=30)}  # fmt: skip
    for label, day in folders.items():
        for n in range(3):
            blob = bucket.blob(f"dbt/{day.isoformat()}/{label.replace(' ', '-')}-{n}/run_results.json")
            blob.upload_from_string(document, content_type="application/json")
    listed: list[str] = []
    store = ArtifactStore("gs://artifacts/dbt", max_age=dt.timedelta(days=8))
    client = storage.Client()
    original = client.list_blobs

    def recording_list_blobs(bucket_name: str, prefix: str = "", **kwargs: object) -> Iterator[object]:
        listed.append(prefix)
        return original(bucket_name, prefix=prefix, **kwargs)

    client.list_blobs = recording_list_blobs  # type: ignore[method-assign]
    store._client = client
    assert len(list(store.documents())) == 6 and store.cached == 6  # the month-old folder is not read
    assert all(prefix.startswith("dbt/") and prefix.count("-") == 2 for prefix in listed)  # dbt/YYYY-MM-DD/
    assert len(listed) == 9  # one listing per day of the window, never the whole prefix
    store.max_age = dt.timedelta(days=1)
    assert len(list(store.documents())) == 3 and store.cached == 3  # older runs leave the cache


def test_the_artifacts_prefix_has_a_lifecycle_rule() -> None:
    import json

    rule = json.loads((PROJECT_DIR.parent / "environments" / "bucket-lifecycle.json").read_text())
    (delete,) = [r for r in rule["rule"] if r["condition"].get("matchesPrefix") == ["dbt-artifacts/"]]
    assert delete["action"]["type"] == "Delete"
    assert 8 < delete["condition"]["age"] <= 90  # longer than data-health's window, bounded
