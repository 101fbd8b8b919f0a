"""Two writers of one interval: the manifest stays a commit point, nothing is lost or named but missing.

Before: a batch extract's commit deleted every object its manifest did not
list, a concurrent run's parts and checkpoint included, so the other run then
committed a manifest naming deleted parts (and `load` exited 1, retried in
vain); two stream consumers rewrote a day's manifest with an unconditional
read-modify-write, and the later one dropped the earlier one's batch after
its offsets were committed.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from extract_load.cli import main
from extract_load.intervals import Interval
from extract_load.landing.bucket import LocalBucket
from extract_load.landing.manifest import (
    CHECKPOINT,
    ORPHAN_SECONDS,
    ConcurrentCommitError,
    Part,
    PartitionWriter,
    partition_prefix,
    read_manifest,
)
from extract_load.sources.kafka import _add_to_manifest

DAY = Interval(dt.date(2025, 3, 5), dt.date(2025, 3, 6))


def records(user: str, n: int) -> list[dict[str, str]]:
    return [
        {"event_time": f"2025-03-05 10:00:{i:02d}", "user_id": user, "event_type": "like"} for i in range(n)
    ]


def test_a_second_extract_of_one_interval_neither_deletes_the_first_nor_commits_over_it(
    tmp_path: Path,
) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    retry = PartitionWriter(bucket, "events", DAY, origin="retry", part_rows=2)
    orphan = PartitionWriter(bucket, "events", DAY, origin="orphaned pod", part_rows=2)
    orphan.write(records("u_orphan", 2))
    orphan.end_page({"page": 2})  # a part and a checkpoint, in flight
    retry.write(records("u_retry", 3))
    committed = retry.commit()
    # The retry's commit left the other run's work alone...
    prefix = partition_prefix("events", DAY)
    assert f"{prefix}/{orphan.manifest.parts[0].name}" in bucket.list(prefix)
    assert bucket.exists(f"{prefix}/{CHECKPOINT}")
    # ...and the other run cannot commit over it: it fails (exit 4, retried) instead.
    orphan.write(records("u_orphan", 1))
    with pytest.raises(ConcurrentCommitError, match="another run committed this interval"):
        orphan.commit()
    landed = read_manifest(bucket, "events", DAY)  # every part it names exists, checksums match
    assert landed.run_id == committed.run_id and landed.row_count == 3


def test_a_crashed_runs_leftovers_go_once_they_expire(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    crashed = PartitionWriter(bucket, "events", DAY, origin="crashed", part_rows=1)
    crashed.write(records("u_1", 1))
    crashed.end_page({"page": 1})
    prefix = partition_prefix("events", DAY)
    leftovers = [k for k in bucket.list(prefix)]
    old = time.time() - ORPHAN_SECONDS - 60
    for key in leftovers:
        os.utime(bucket.local_path(key), (old, old))
    PartitionWriter(bucket, "events", DAY, origin="next day's run").commit()
    assert not set(leftovers) & set(bucket.list(prefix))


def test_stream_consumers_adding_batches_at_once_lose_none(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    consumers, batches = 4, 25

    def consume(consumer: int) -> None:
        for batch in range(batches):
            part = Part(
                name=f"stream-p{consumer}-o{batch}-{batch}.jsonl.gz", rows=1, bytes=1, sha256="0" * 64
            )
            _add_to_manifest(bucket, "events", DAY, [part])

    threads = [threading.Thread(target=consume, args=(c,)) for c in range(consumers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    manifest_parts = LocalBucket(tmp_path / "bucket").read_bytes(
        f"{partition_prefix('events', DAY)}/_manifest.json"
    )
    listed = manifest_parts.count(b'"name"')
    assert listed == consumers * batches  # every batch whose offsets moved is in the manifest


def test_a_manifest_naming_a_missing_part_is_the_landings_exit_code(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    writer = PartitionWriter(bucket, "events", DAY, origin="test")
    writer.write(records("u_1", 2))
    manifest = writer.commit()
    bucket.delete(f"{partition_prefix('events', DAY)}/{manifest.parts[0].name}")
    result = CliRunner().invoke(
        main,
        [
            "load",
            "--start",
            "2025-03-05",
            "--bucket",
            str(tmp_path / "bucket"),
            "--warehouse",
            str(tmp_path / "w.duckdb"),
        ],
    )
    assert result.exit_code == 4, result.output  # EXIT_LANDING_INVALID: re-run the extract
    assert "listed by the manifest but missing" in result.output


def test_deleting_a_days_objects_leaves_no_folder_behind(tmp_path: Path) -> None:
    # Retention removes a day by its objects; the compare-and-swap's lock must not keep its folder.
    bucket = LocalBucket(tmp_path / "bucket")
    writer = PartitionWriter(bucket, "events", DAY, origin="test")
    writer.write(records("u_1", 1))
    writer.commit()
    prefix = partition_prefix("events", DAY)
    for key in bucket.list(prefix):
        bucket.delete(key)
    assert not (tmp_path / "bucket" / prefix).exists() and bucket.list("") == []
