"""Kafka -> bucket in micro-batches; offsets move only after the data is durable.

Each batch is grouped by the event's local day and Kafka partition and landed
as `raw/<source>/dt=D/stream-p<partition>-o<first>-<last>.jsonl.gz`; then the
day's manifest is rewritten to list it (the manifest is the commit point, as
for every source); only then are the offsets committed. A crash between the
manifest and the commit redelivers the batch: a batch with the same offsets
lands under the same name and replaces itself, and any overlap left by
different batch boundaries is removed downstream by `event_id`.

One stream worker per source and consumer group writes a day's manifest;
Airflow runs it with `max_active_runs=1`.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from extract_load.bucket import Bucket
from extract_load.intervals import Interval
from extract_load.landing import MANIFEST, Manifest, Part, partition_prefix
from extract_load.schema import BROKEN_LINE_KEY, parse_local_time

log = logging.getLogger(__name__)

CRASH_BEFORE_COMMIT = "EXTRACT_LOAD_FAILPOINT_BEFORE_OFFSET_COMMIT"


@dataclass
class StreamStats:
    batches: int = 0
    messages: int = 0
    days: set[str] = field(default_factory=set)
    # Messages still behind the committed offset per (topic, partition) when the run ended.
    lag: dict[tuple[str, int], int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "messages": self.messages,
            "days": sorted(self.days),
            "lag": {f"{topic}/{partition}": lag for (topic, partition), lag in sorted(self.lag.items())},
        }


def _record(message: Any) -> tuple[dict[str, Any], str | None]:
    """The event as sent plus where it came from; the local day it belongs to (or None)."""
    raw = message.value() or b""
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        value = {BROKEN_LINE_KEY: raw.decode("utf-8", errors="replace")}
    record = value if isinstance(value, dict) else {"_value": value}
    record["_kafka"] = {
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
    }
    when = parse_local_time(record.get("event_time")) if isinstance(record.get("event_time"), str) else None
    return record, when.date().isoformat() if when else None


def land_batch(bucket: Bucket, source: str, messages: list[Any], fallback_day: str) -> set[str]:
    """Land one batch; returns the days whose manifests now list it."""
    groups: dict[tuple[str, int], list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for message in messages:
        record, day = _record(message)
        # Records without a usable time are landed on the day they arrived; the load quarantines them.
        groups[(day or fallback_day, message.partition())].append((message.offset(), record))
    by_day: dict[str, list[Part]] = defaultdict(list)
    for (day, partition), rows in sorted(groups.items()):
        rows.sort(key=lambda r: r[0])
        body = "".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n" for _, r in rows)
        data = gzip.compress(body.encode(), mtime=0)
        name = f"stream-p{partition}-o{rows[0][0]}-{rows[-1][0]}.jsonl.gz"
        interval = Interval.parse(day)
        bucket.write_bytes(f"{partition_prefix(source, interval)}/{name}", data)
        by_day[day].append(
            Part(name=name, rows=len(rows), bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
        )
    for day, parts in by_day.items():
        _add_to_manifest(bucket, source, Interval.parse(day), parts)
    return set(by_day)


def _add_to_manifest(bucket: Bucket, source: str, interval: Interval, parts: list[Part]) -> None:
    prefix = partition_prefix(source, interval)
    key = f"{prefix}/{MANIFEST}"
    if bucket.exists(key):
        manifest = Manifest.from_json(bucket.read_bytes(key))
    else:
        manifest = Manifest(source, interval.start.isoformat(), interval.end.isoformat(), run_id="stream")
    names = {p.name for p in parts}
    manifest.parts = sorted([p for p in manifest.parts if p.name not in names] + parts, key=lambda p: p.name)
    manifest.row_count = sum(p.rows for p in manifest.parts)
    manifest.bytes = sum(p.bytes for p in manifest.parts)
    manifest.run_id = hashlib.sha256("".join(p.sha256 for p in manifest.parts).encode()).hexdigest()[:12]
    manifest.extracted_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    manifest.origin = "kafka"
    bucket.write_bytes(key, manifest.to_json())


def consume(
    bucket: Bucket,
    source: str,
    config: dict[str, Any],
    topic: str,
    max_batch: int = 10_000,
    max_wait_seconds: float = 30.0,
    idle_seconds: float | None = None,
    max_batches: int | None = None,
    max_messages: int | None = None,
) -> StreamStats:
    """Consume micro-batches until idle for `idle_seconds`, or a batch or message budget is spent.

    With none of them set it runs forever, as a long-lived worker; a scheduler
    runs it bounded, so each task ends and the next picks up at the committed offsets.
    """
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer({**config, "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    assigned: list[bool] = []
    # Idle time counts only once the group has given this consumer partitions.
    consumer.subscribe([topic], on_assign=lambda _consumer, _partitions: assigned.append(True))
    stats = StreamStats()
    idle_since = time.monotonic()
    try:
        while (max_batches is None or stats.batches < max_batches) and (
            max_messages is None or stats.messages < max_messages
        ):
            messages = consumer.consume(num_messages=max_batch, timeout=max_wait_seconds)
            errors = [m.error() for m in messages if m.error() is not None]
            if errors:
                raise KafkaException(errors[0])
            if not messages:
                if not assigned:
                    idle_since = time.monotonic()
                elif idle_seconds is not None and time.monotonic() - idle_since >= idle_seconds:
                    break
                continue
            idle_since = time.monotonic()
            today = dt.datetime.now(dt.UTC).date().isoformat()
            stats.days |= land_batch(bucket, source, messages, fallback_day=today)
            if os.environ.get(CRASH_BEFORE_COMMIT):
                log.error("failpoint %s: exiting between landing and offset commit", CRASH_BEFORE_COMMIT)
                os._exit(70)
            last: dict[tuple[str, int], int] = {}
            for m in messages:
                last[(m.topic(), m.partition())] = max(last.get((m.topic(), m.partition()), -1), m.offset())
            consumer.commit(
                offsets=[TopicPartition(t, p, offset + 1) for (t, p), offset in last.items()],
                asynchronous=False,
            )
            stats.batches += 1
            stats.messages += len(messages)
            log.info("landed and committed a batch of %d messages (%d so far)", len(messages), stats.messages)
        stats.lag = consumer_lag(consumer)
    finally:
        consumer.close()
    return stats


def consumer_lag(consumer: Any) -> dict[tuple[str, int], int]:
    """High watermark minus committed offset for each partition this consumer holds."""
    lag = {}
    partitions = consumer.assignment()
    if not partitions:
        return lag
    for committed in consumer.committed(partitions, timeout=10):
        low, high = consumer.get_watermark_offsets(committed, timeout=10, cached=False)
        position = committed.offset if committed.offset >= 0 else low
        lag[(committed.topic, committed.partition)] = max(high - position, 0)
    return lag
