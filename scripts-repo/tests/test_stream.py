"""Kafka -> bucket against librdkafka's mock cluster over TCP, producer and consumer in separate processes."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from extract_load.contract import local_today
from extract_load.intervals import Interval
from extract_load.landing.bucket import LocalBucket
from extract_load.landing.manifest import read_manifest
from extract_load.load.duckdb import load_duckdb
from extract_load.sources.kafka import CRASH_BEFORE_COMMIT

HERE = Path(__file__).parent
DAYS = ("2025-03-05", "2025-03-06", "2025-03-07")
SOURCE = "events_stream"  # what `stream` lands by default: never a batch source's name
EVENTS = [
    {"event_time": f"{day} {i // 60:02d}:{i % 60:02d}:00", "user_id": f"u_{i}", "event_type": "like"}
    for day in DAYS
    for i in range(200)
]


# Messages that cannot be read or dated: each once made every run fail on its batch, or landed on
# the day it arrived where its load quarantined it against a real day's share.
POISON = [
    "{not json",
    "[1, 2]",
    "[" * 100_000 + "]" * 100_000,  # RecursionError in a JSON parser
    json.dumps({"event_time": "9999-12-31T23:59:59Z", "user_id": "u_x", "event_type": "like"}),  # overflows
    json.dumps({"event_time": "next tuesday", "user_id": "u_y", "event_type": "like"}),
    json.dumps({"user_id": "u_z", "event_type": "like"}),
]
# Datable, but not JSON any warehouse takes: it lands, and its load quarantines it.
NON_STANDARD = json.dumps(
    {"event_time": "2025-03-06 12:00:00", "user_id": "u_nan", "event_type": "miles_earned", "miles_amount": 1}
).replace("1}", "NaN}")


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[str]:
    lines = [json.dumps(e) for e in EVENTS] + POISON + [NON_STANDARD]
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
        result = load_duckdb(bucket, SOURCE, Interval.parse(day), db, max_quarantine_ratio=1.0)
        for i, value in enumerate((result.rows_in, result.loaded, result.quarantined)):
            totals[i] += value
    return totals[0], totals[1], totals[2]


def test_stream_lands_every_message_and_loads_by_day(kafka: str, tmp_path: Path) -> None:
    done = stream(kafka, tmp_path / "bucket")
    assert done.returncode == 0, done.stderr[-3000:]
    stats = json.loads(done.stdout.splitlines()[-1])
    assert stats["messages"] == len(EVENTS) + len(POISON) + 1 and stats["batches"] >= 7
    # What cannot be read or dated is quarantined by the stream itself, with its offset, under the day it
    # arrived; that day's load copies it into the quarantine table beside the load's own.
    poison_reasons = {
        "broken_line": 2,
        "not_a_json_object": 1,
        "unparseable_event_time": 2,
        "missing_event_time": 1,
    }
    assert stats["quarantined"] == len(POISON) and stats["reasons"] == poison_reasons
    bucket = LocalBucket(tmp_path / "bucket")
    kept = [
        json.loads(line)
        for key in bucket.list(f"quarantine/{SOURCE}/undated")
        for line in gzip.decompress(bucket.read_bytes(key)).splitlines()
    ]
    assert len(kept) == len(POISON) and all(isinstance(q["line"], int) for q in kept)
    arrived = local_today()
    assert sorted(stats["days"]) == sorted({*DAYS, arrived})
    assert bucket.list(f"quarantine/{SOURCE}/undated/dt={arrived}")
    landed = sum(read_manifest(bucket, SOURCE, Interval.parse(d)).row_count for d in stats["days"])
    assert landed + stats["quarantined"] == stats["messages"]
    db = tmp_path / "w.duckdb"
    # in = loaded + quarantined, every message once.
    assert load_all(bucket, db, stats["days"]) == (stats["messages"], len(EVENTS), 1 + len(POISON))
    with duckdb.connect(str(db), read_only=True) as con:
        reasons = dict(
            con.execute("select reason, count(*) from raw.events_stream_quarantine group by 1").fetchall()
        )
        offsets = con.execute(
            "select count(*) from raw.events_stream_quarantine"
            " where _interval_start = ? and _source_file like 'events/%'",
            [arrived],
        ).fetchone()[0]
    assert reasons == {"non_standard_json": 1, **poison_reasons}
    assert offsets == len(POISON)  # where each came from: topic/partition, and its offset as the line
    # Loading the arrival day again replaces its quarantine: nothing twice.
    load_all(bucket, db, [arrived])
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*) from raw.events_stream_quarantine").fetchone()[0] == 1 + len(
            POISON
        )
    # A second consumer run finds nothing new: offsets were committed.
    again = stream(kafka, tmp_path / "bucket")
    assert json.loads(again.stdout.splitlines()[-1])["messages"] == 0


def test_a_crash_between_landing_and_offset_commit_loses_nothing(kafka: str, tmp_path: Path) -> None:
    crashed = stream(kafka, tmp_path / "bucket", "--max-batches", "1", env={CRASH_BEFORE_COMMIT: "1"})
    assert crashed.returncode == 70, crashed.stderr[-3000:]
    bucket = LocalBucket(tmp_path / "bucket")
    assert bucket.list(f"raw/{SOURCE}"), "the batch must be landed before the crash"

    resumed = stream(kafka, tmp_path / "bucket")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    total = len(EVENTS) + len(POISON) + 1
    assert json.loads(resumed.stdout.splitlines()[-1])["messages"] == total  # redelivered from the start
    db = tmp_path / "w.duckdb"
    load_all(bucket, db)
    with duckdb.connect(str(db), read_only=True) as con:
        offsets = con.execute(
            "select count(distinct (_record ->> '$._kafka.partition', _record ->> '$._kafka.offset')) "
            "from raw.events_stream"
        ).fetchone()[0]
        distinct_events = con.execute(
            "select count(*) from (select distinct event_time, user_id, event_type from raw.events_stream)"
        ).fetchone()[0]
    # Nothing lost (the NaN message is quarantined by its load); duplicates only by redelivery.
    assert offsets == len(EVENTS) and distinct_events == len(EVENTS)


def test_a_bounded_run_stops_at_its_message_budget_and_the_next_run_continues(
    kafka: str, tmp_path: Path
) -> None:
    first = stream(kafka, tmp_path / "bucket", "--max-messages", "250")
    assert first.returncode == 0, first.stderr[-3000:]
    taken = json.loads(first.stdout.splitlines()[-1])["messages"]
    total = len(EVENTS) + len(POISON) + 1
    assert 250 <= taken < total  # stops after the batch that reaches the budget
    # The consumer reports how far behind it stopped: exactly what the next run takes.
    behind = sum(json.loads(first.stdout.splitlines()[-1])["lag"].values())
    assert behind == total - taken
    rest = stream(kafka, tmp_path / "bucket")
    assert json.loads(rest.stdout.splitlines()[-1])["messages"] == total - taken
    assert sum(json.loads(rest.stdout.splitlines()[-1])["lag"].values()) == 0
    bucket = LocalBucket(tmp_path / "bucket")
    assert load_all(bucket, tmp_path / "w.duckdb")[1] == len(EVENTS)  # every event once, none twice


def test_a_stream_is_dated_by_its_own_contracts_time_column(tmp_path: Path) -> None:
    """A kafka source with its own contract (issue 22): days come from its time column, not event_time."""
    folder = tmp_path / "config"
    (folder / "contracts").mkdir(parents=True)
    (folder / "contracts" / "orders.yaml").write_text(
        "name: orders\ntime_column: ordered_at\ncolumns:\n"
        "  - {name: order_id, type: string, required: true}\n"
        "  - {name: ordered_at, type: timestamp, required: true}\n"
    )
    (folder / "sources.yaml").write_text(
        "sources:\n  orders_stream:\n    kind: kafka\n    topic_env: KAFKA_TOPIC\n    contract: orders\n"
    )
    orders = [{"order_id": f"o-{i}", "ordered_at": f"2025-03-0{5 + i % 2} 10:00:00"} for i in range(10)]
    lines = [json.dumps(o) for o in orders] + [json.dumps({"order_id": "o-x", "event_time": "2025-03-05"})]
    messages = tmp_path / "orders.jsonl"
    messages.write_text("\n".join(lines) + "\n")
    cluster = subprocess.Popen(
        [sys.executable, str(HERE / "kafka_mock_cluster.py"), "events", str(messages), "2"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        bootstrap = cluster.stdout.readline().split()[0]  # type: ignore[union-attr]
        done = stream(
            bootstrap, tmp_path / "bucket", "--source", "orders_stream",
            env={"SOURCES_FILE": str(folder / "sources.yaml")},
        )  # fmt: skip
    finally:
        cluster.stdin.close()  # type: ignore[union-attr]
        cluster.wait(timeout=30)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["reasons"] == {"missing_ordered_at": 1}, result
    bucket = LocalBucket(tmp_path / "bucket")
    landed = {day: read_manifest(bucket, "orders_stream", Interval.parse(day)).row_count for day in DAYS[:2]}
    assert landed == {"2025-03-05": 5, "2025-03-06": 5}
