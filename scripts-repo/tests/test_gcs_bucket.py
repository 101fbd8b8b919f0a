"""The gs:// bucket through google-cloud-storage against a real GCS emulator over HTTP."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from extract_load.intervals import Interval
from extract_load.landing.bucket import GCSBucket, open_bucket
from extract_load.landing.manifest import MANIFEST, PartitionWriter
from extract_load.load.duckdb import load_duckdb

DAY = Interval(dt.date(2025, 3, 5), dt.date(2025, 3, 6))


def test_objects_round_trip_and_list_under_a_prefix(gcs_emulator: str) -> None:
    bucket = open_bucket("gs://landing/team-a")
    assert isinstance(bucket, GCSBucket) and bucket.url == "gs://landing/team-a"
    bucket.write_bytes("raw/x/dt=2025-03-05/a.bin", b"one")
    bucket.write_bytes("raw/x/dt=2025-03-05/b.bin", b"two")
    bucket.write_bytes("raw/y/dt=2025-03-05/c.bin", b"three")
    assert bucket.read_bytes("raw/x/dt=2025-03-05/b.bin") == b"two"
    assert bucket.list("raw/x") == ["raw/x/dt=2025-03-05/a.bin", "raw/x/dt=2025-03-05/b.bin"]
    bucket.delete("raw/x/dt=2025-03-05/a.bin")
    bucket.delete("raw/x/dt=2025-03-05/never-there.bin")
    assert not bucket.exists("raw/x/dt=2025-03-05/a.bin") and bucket.exists("raw/y/dt=2025-03-05/c.bin")
    with pytest.raises(ValueError, match="escapes"):
        bucket.write_bytes("../other", b"x")


def test_land_and_load_through_gcs(gcs_emulator: str, tmp_path: Path) -> None:
    bucket = open_bucket("gs://landing/pipeline")
    records = [
        {"event_time": f"2025-03-05 {h:02d}:00:00", "user_id": f"u_{h}", "event_type": "like"}
        for h in range(24)
    ]
    for _ in range(2):  # a re-run replaces the partition
        writer = PartitionWriter(bucket, "events", DAY, origin="test", part_rows=10)
        writer.write(records[:12])
        writer.end_page({"cursor": "12"})
        writer.write(records[12:])
        manifest = writer.commit()
    landed = bucket.list("raw/events/dt=2025-03-05")
    assert sorted(landed) == sorted(
        [f"raw/events/dt=2025-03-05/{p.name}" for p in manifest.parts]
        + [f"raw/events/dt=2025-03-05/{MANIFEST}"]
    )
    result = load_duckdb(bucket, "events", DAY, tmp_path / "w.duckdb")
    assert (result.rows_in, result.loaded, result.quarantined) == (24, 24, 0)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        assert con.execute("select count(distinct user_id) from raw.events").fetchone() == (24,)


def test_prune_removes_whole_days_past_retention_only(gcs_emulator: str) -> None:
    from extract_load.landing.retention import prune

    bucket = open_bucket("gs://landing/retention")
    for day in ("2025-01-01", "2025-01-02", "2025-03-01"):
        for name in ("part-a-00000.jsonl.gz", "part-a-00001.jsonl.gz", MANIFEST):
            bucket.write_bytes(f"raw/events/dt={day}/{name}", b"x")
    bucket.write_bytes("raw/events_stream/dt=2025-01-01/part.jsonl.gz", b"x")  # another source
    planned = prune(bucket, "events", keep_days=30, today=dt.date(2025, 3, 5), dry_run=True)
    assert planned.days == ["2025-01-01", "2025-01-02"] and len(bucket.list("raw/events")) == 9
    done = prune(bucket, "events", keep_days=30, today=dt.date(2025, 3, 5))
    assert (done.days, done.objects, done.cutoff) == (["2025-01-01", "2025-01-02"], 6, "2025-02-03")
    assert [k.split("/")[2] for k in bucket.list("raw/events")] == ["dt=2025-03-01"] * 3
    assert bucket.exists("raw/events_stream/dt=2025-01-01/part.jsonl.gz")
    with pytest.raises(ValueError, match="at least 1"):
        prune(bucket, "events", keep_days=0, today=dt.date(2025, 3, 5))


def test_compare_and_swap_and_the_lease_through_gcs_preconditions(gcs_emulator: str) -> None:
    from extract_load.landing.leases import IntervalBusyError, Lease

    bucket = open_bucket("gs://landing/cas")
    key = "raw/x/dt=2025-03-05/_manifest.json"
    first = bucket.write_if(key, b"one", "0")  # create only if absent
    assert first is not None and bucket.write_if(key, b"again", "0") is None
    second = bucket.write_if(key, b"two", first)
    assert second is not None and second != first and bucket.read_versioned(key) == (b"two", second)
    assert bucket.write_if(key, b"stale", first) is None  # a writer holding an old generation loses
    assert not bucket.delete_if(key, first) and bucket.exists(key)
    assert bucket.delete_if(key, second) and not bucket.exists(key)
    with Lease(bucket, "raw/x/dt=2025-03-05", ttl=30), pytest.raises(IntervalBusyError):
        Lease(bucket, "raw/x/dt=2025-03-05", ttl=30).acquire(wait=0)
    assert not bucket.exists("raw/x/dt=2025-03-05/_lease.json")


def test_of_two_extracts_committing_one_interval_through_gcs_the_second_fails(gcs_emulator: str) -> None:
    from extract_load.landing.manifest import ConcurrentCommitError, read_manifest

    bucket = open_bucket("gs://landing/two-writers")
    record = {"event_time": "2025-03-05 10:00:00", "user_id": "u_1", "event_type": "like"}
    first = PartitionWriter(bucket, "events", DAY, origin="retry")
    second = PartitionWriter(bucket, "events", DAY, origin="orphaned pod")
    first.write([record])
    committed = first.commit()
    second.write([record, record])
    with pytest.raises(ConcurrentCommitError):
        second.commit()
    assert read_manifest(bucket, "events", DAY).run_id == committed.run_id
