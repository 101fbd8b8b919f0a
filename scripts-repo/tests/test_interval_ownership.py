"""Who may write an interval's landing: one batch writer at a time (a lease), one feed per source.

Before: two extracts of one interval both ran to the end and only the
manifest's compare-and-swap stopped the second; a killed writer's interval
had no owner to wait for; and a batch source and a stream both named
`events` replaced each other's days after the stream had committed its
offsets.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from extract_load.cli import main
from extract_load.intervals import Interval
from extract_load.landing.bucket import LocalBucket
from extract_load.landing.leases import LEASE, IntervalBusyError, Lease, LeaseLostError
from extract_load.landing.manifest import (
    FeedConflictError,
    Part,
    PartitionWriter,
    partition_prefix,
    read_manifest,
)
from extract_load.sources.kafka import _add_to_manifest

DAY = Interval(dt.date(2025, 3, 5), dt.date(2025, 3, 6))
PREFIX = partition_prefix("events", DAY)


def records(n: int) -> list[dict[str, str]]:
    return [
        {"event_time": f"2025-03-05 10:00:{i:02d}", "user_id": "u_1", "event_type": "like"} for i in range(n)
    ]


def test_a_held_lease_makes_a_second_writer_wait_then_refuse(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    with Lease(bucket, PREFIX, ttl=30):
        started = time.monotonic()
        with pytest.raises(IntervalBusyError, match="is being written by run"):
            Lease(bucket, PREFIX, ttl=30).acquire(wait=0.5)
        assert time.monotonic() - started >= 0.5  # it waited for the holder before refusing
    # Released at once when the holder finished, not after its time to live.
    assert not bucket.exists(f"{PREFIX}/{LEASE}")
    Lease(bucket, PREFIX, ttl=30).acquire(wait=0)


def test_a_waiting_writer_proceeds_as_soon_as_the_holder_finishes(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    first = Lease(bucket, PREFIX, ttl=30).acquire()
    threading.Timer(0.5, first.release).start()
    second = Lease(bucket, PREFIX, ttl=30).acquire(wait=20)
    assert json.loads(bucket.read_bytes(f"{PREFIX}/{LEASE}"))["owner"] == second.owner


def test_a_crashed_holders_lease_is_taken_over_once_it_expires(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    crashed = Lease(bucket, PREFIX, ttl=0.5).acquire()  # never renewed: its process died
    retry = Lease(bucket, PREFIX, ttl=30).acquire(wait=10)
    # The stalled writer, should it wake up, learns it lost the interval and commits nothing.
    writer = PartitionWriter(bucket, "events", DAY, origin="stalled", part_rows=1, lease=crashed)
    writer.write(records(2))
    with pytest.raises(LeaseLostError, match="taken over"):
        writer.commit()
    assert not bucket.exists(f"{PREFIX}/_manifest.json")
    assert json.loads(bucket.read_bytes(f"{PREFIX}/{LEASE}"))["owner"] == retry.owner


def test_a_live_writers_heartbeat_keeps_its_lease_past_the_time_to_live(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    with Lease(bucket, PREFIX, ttl=0.6) as lease:
        time.sleep(2)  # three times its time to live, renewed every 0.2 s
        with pytest.raises(IntervalBusyError):
            Lease(bucket, PREFIX, ttl=0.6).acquire(wait=0)
        writer = PartitionWriter(bucket, "events", DAY, origin="slow", lease=lease)
        writer.write(records(3))
        assert writer.commit().row_count == 3


def test_an_unreadable_lease_never_blocks_an_interval_for_ever(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    bucket.write_bytes(f"{PREFIX}/{LEASE}", b"{truncated")
    Lease(bucket, PREFIX).acquire(wait=0)


def test_an_extract_of_an_interval_another_run_holds_is_the_landings_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXTRACT_LOAD_LEASE_SECONDS", "0.2")  # its own lease, so it waits 2.5 x 0.2 s
    export = tmp_path / "export.csv"
    export.write_text("event_time,user_id,event_type\n2025-03-05 10:00:00,u_1,like\n")
    bucket = LocalBucket(tmp_path / "bucket")
    args = ["extract-file", "--source", "events", "--path", str(export), "--bucket", str(tmp_path / "bucket")]
    with Lease(bucket, PREFIX, ttl=30):
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 4, result.output  # retried by Airflow, like a lost commit
    assert "is being written by run" in result.output
    assert not bucket.exists(f"{PREFIX}/_manifest.json")
    result = CliRunner().invoke(main, args)  # the holder finished: the same extract goes through
    assert result.exit_code == 0, result.output
    assert read_manifest(bucket, "events", DAY).row_count == 1
    assert not bucket.exists(f"{PREFIX}/{LEASE}")


def stream_part(bucket: LocalBucket, name: str) -> Part:
    bucket.write_bytes(f"{PREFIX}/{name}", b"")
    return Part(name=name, rows=0, bytes=0, sha256=hashlib.sha256(b"").hexdigest())


def test_a_batch_extract_refuses_a_day_a_stream_lands(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    _add_to_manifest(bucket, "events", DAY, [stream_part(bucket, "stream-p0-o0-9.jsonl.gz")])
    with pytest.raises(FeedConflictError, match="fed either by extracts or by a stream"):
        PartitionWriter(bucket, "events", DAY, origin="api")
    assert [p.name for p in read_manifest(bucket, "events", DAY).parts] == ["stream-p0-o0-9.jsonl.gz"]


def test_a_stream_refuses_a_day_a_batch_extract_landed(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    writer = PartitionWriter(bucket, "events", DAY, origin="api")
    writer.write(records(2))
    committed = writer.commit()
    with pytest.raises(FeedConflictError):
        _add_to_manifest(bucket, "events", DAY, [stream_part(bucket, "stream-p0-o0-9.jsonl.gz")])
    assert read_manifest(bucket, "events", DAY).run_id == committed.run_id


def test_the_stream_refuses_a_name_the_sources_file_gives_a_batch_source(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "stream",
            "--source",
            "events",  # the REST source in the packaged sources file
            "--topic",
            "events",
            "--bootstrap-servers",
            "127.0.0.1:9",
            "--bucket",
            str(tmp_path / "bucket"),
            "--max-batches",
            "1",
        ],
    )
    assert result.exit_code == 2, result.output
    assert "is a rest source in the sources file" in result.output
    assert not (tmp_path / "bucket").exists()  # refused before it consumed or wrote anything
