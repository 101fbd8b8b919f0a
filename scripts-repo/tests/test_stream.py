"""Kafka -> bucket against librdkafka's mock cluster over TCP, producer and consumer in separate processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from extract_load.bucket import LocalBucket
from extract_load.intervals import Interval
from extract_load.landing import read_manifest
from extract_load.stream import CRASH_BEFORE_COMMIT
from extract_load.warehouse import load_duckdb

HERE = Path(__file__).parent
DAYS = ("2025-03-05", "2025-03-06", "2025-03-07")
EVENTS = [
    {"event_time": f"{day} {i // 60:02d}:{i % 60:02d}:00", "user_id": f"u_{i}", "event_type": "like"}
    for day in DAYS
    for i in range(200)
]


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[str]:
    lines = [json.dumps(e) for e in EVENTS] + ["{not json", "[1, 2]"]
    events_file = tmp_path / "events.jsonl"
    events_file.write_text("\n".join(lines) + "\n")
    cluster = subprocess.Popen(
        [sys.executable, str(HERE / "kafka_mock_cluster.py"), "events", str(events_file), "3"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = cluster.stdout.readline().split()  # type: ignore[union-attr]
    assert line, "the mock cluster did not start"
    bootstrap, partitions = line[0], int(line[1])
    assert partitions > 1, "the test needs several partitions"
    try:
        yield bootstrap
    finally:
        cluster.stdin.close()  # type: ignore[union-attr]
        cluster.wait(timeout=30)


def stream(
    bootstrap: str, bucket: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "extract_load.cli",
            "stream",
            "--topic",
            "events",
            "--bootstrap-servers",
            bootstrap,
            "--group",
            "loader",
            "--bucket",
            str(bucket),
            "--max-batch",
            "100",
            "--max-wait",
            "1",
            "--until-idle",
            "3",
            # A crashed consumer holds its partitions until its session times out: keep that short here.
            "--config",
            "session.timeout.ms=6000",
            "--config",
            "heartbeat.interval.ms=500",
            *extra,
        ],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
    )


def load_all(bucket: LocalBucket, db: Path, days: list[str] | tuple[str, ...] = DAYS) -> tuple[int, int, int]:
    totals = [0, 0, 0]
    for day in days:
        result = load_duckdb(bucket, "events", Interval.parse(day), db, max_quarantine_ratio=1.0)
        for i, value in enumerate((result.rows_in, result.loaded, result.quarantined)):
            totals[i] += value
    return totals[0], totals[1], totals[2]


def test_stream_lands_every_message_and_loads_by_day(kafka: str, tmp_path: Path) -> None:
    done = stream(kafka, tmp_path / "bucket")
    assert done.returncode == 0, done.stderr[-3000:]
    stats = json.loads(done.stdout.splitlines()[-1])
    assert stats["messages"] == len(EVENTS) + 2 and stats["batches"] >= 7
    bucket = LocalBucket(tmp_path / "bucket")
    landed = sum(read_manifest(bucket, "events", Interval.parse(d)).row_count for d in stats["days"])
    assert landed == len(EVENTS) + 2
    db = tmp_path / "w.duckdb"
    # Messages without a usable time land on the day they arrived, and are quarantined there.
    assert set(DAYS) <= set(stats["days"]) and len(stats["days"]) == len(DAYS) + 1
    assert load_all(bucket, db, stats["days"]) == (len(EVENTS) + 2, len(EVENTS), 2)
    with duckdb.connect(str(db), read_only=True) as con:
        reasons = dict(
            con.execute("select reason, count(*) from raw.events_quarantine group by 1").fetchall()
        )
    assert reasons == {"broken_line": 1, "missing_event_time": 1}
    # A second consumer run finds nothing new: offsets were committed.
    again = stream(kafka, tmp_path / "bucket")
    assert json.loads(again.stdout.splitlines()[-1])["messages"] == 0


def test_a_crash_between_landing_and_offset_commit_loses_nothing(kafka: str, tmp_path: Path) -> None:
    crashed = stream(kafka, tmp_path / "bucket", "--max-batches", "1", env={CRASH_BEFORE_COMMIT: "1"})
    assert crashed.returncode == 70, crashed.stderr[-3000:]
    bucket = LocalBucket(tmp_path / "bucket")
    assert bucket.list("raw/events"), "the batch must be landed before the crash"

    resumed = stream(kafka, tmp_path / "bucket")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (
        json.loads(resumed.stdout.splitlines()[-1])["messages"] == len(EVENTS) + 2
    )  # redelivered from the start
    db = tmp_path / "w.duckdb"
    load_all(bucket, db)
    with duckdb.connect(str(db), read_only=True) as con:
        offsets = con.execute(
            "select count(distinct (_record ->> '$._kafka.partition', _record ->> '$._kafka.offset')) "
            "from raw.events"
        ).fetchone()[0]
        distinct_events = con.execute(
            "select count(*) from (select distinct event_time, user_id, event_type from raw.events)"
        ).fetchone()[0]
    assert offsets == len(EVENTS) and distinct_events == len(
        EVENTS
    )  # nothing lost; duplicates only by redelivery


def test_a_bounded_run_stops_at_its_message_budget_and_the_next_run_continues(
    kafka: str, tmp_path: Path
) -> None:
    first = stream(kafka, tmp_path / "bucket", "--max-messages", "250")
    assert first.returncode == 0, first.stderr[-3000:]
    taken = json.loads(first.stdout.splitlines()[-1])["messages"]
    assert 250 <= taken < len(EVENTS) + 2  # stops after the batch that reaches the budget
    # The consumer reports how far behind it stopped: exactly what the next run takes.
    behind = sum(json.loads(first.stdout.splitlines()[-1])["lag"].values())
    assert behind == len(EVENTS) + 2 - taken
    rest = stream(kafka, tmp_path / "bucket")
    assert json.loads(rest.stdout.splitlines()[-1])["messages"] == len(EVENTS) + 2 - taken
    assert sum(json.loads(rest.stdout.splitlines()[-1])["lag"].values()) == 0
    bucket = LocalBucket(tmp_path / "bucket")
    assert load_all(bucket, tmp_path / "w.duckdb")[1] == len(EVENTS)  # every event once, none twice
