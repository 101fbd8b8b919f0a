"""Kafka -> bucket in micro-batches; offsets move only after the data is durable.

Each batch is grouped by the event's local day and Kafka partition and landed
as `raw/<source>/dt=D/stream-p<partition>-o<first>-<last>.jsonl.gz`; then the
day's manifest is rewritten to list it (the manifest is the commit point, as
for every source); only then are the offsets committed. A crash between the
manifest and the commit redelivers the batch: a batch with the same offsets
lands under the same name and replaces itself, and any overlap left by
different batch boundaries is removed downstream by `event_id`.

A message that cannot be read (not UTF-8, not JSON, nested too deep) or has
no usable day (no or an unparseable event_time, out of range) never blocks
the stream: it is quarantined, with its reason, topic, partition and offset,
under `quarantine/<source>/undated/dt=<day it arrived>/` before the offsets
move, as a file's extract quarantines records without a day; the load of the
arrival day (which the run reports as touched) copies them into the
warehouse's quarantine table.

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
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from extract_load.contract import BROKEN_LINE_KEY, local_days, local_today
from extract_load.intervals import Interval
from extract_load.landing.bucket import Bucket
from extract_load.landing.manifest import (
    MANIFEST,
    STREAM,
    ConcurrentCommitError,
    Manifest,
    Part,
    ensure_feed,
    partition_prefix,
)
from extract_load.landing.quarantine import undated_prefix
from extract_load.settings import FAILPOINT_BEFORE_OFFSET_COMMIT, settings

log = logging.getLogger(__name__)

CRASH_BEFORE_COMMIT = FAILPOINT_BEFORE_OFFSET_COMMIT


@dataclass
class StreamStats:
    batches: int = 0
    messages: int = 0
    days: set[str] = field(default_factory=set)
    # Messages quarantined because they could not be read or dated, by reason.
    reasons: dict[str, int] = field(default_factory=dict)
    # Messages still behind the committed offset per (topic, partition) when the run ended.
    lag: dict[tuple[str, int], int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "messages": self.messages,
            "days": sorted(self.days),
            "quarantined": sum(self.reasons.values()),
            "reasons": dict(sorted(self.reasons.items())),
            "lag": {f"{topic}/{partition}": lag for (topic, partition), lag in sorted(self.lag.items())},
        }


def _record(message: Any) -> tuple[dict[str, Any], str | None]:
    """The event as sent plus where it came from, and why it cannot be used (None when it can).

    Whatever the bytes (invalid UTF-8, broken or deeply nested JSON), this
    returns: one bad message must not fail every run on its batch.
    """
    raw = message.value() or b""
    reason = None
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        value = {
            BROKEN_LINE_KEY: raw.decode("utf-8", errors="replace"),
            "error": f"{type(exc).__name__}: {exc}",
        }
        reason = "broken_line"
    if isinstance(value, dict):
        record = value
    else:
        record, reason = {"_value": value}, reason or "not_a_json_object"
    record["_kafka"] = {
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
    }
    return record, reason


def land_batch(
    bucket: Bucket, source: str, messages: list[Any], time_column: str = "event_time"
) -> tuple[set[str], dict[str, int]]:
    """Land one batch; returns the days whose manifests now list it and what was quarantined, by reason.

    A message's day is its contract's time column, read by the loader's rule.
    """
    records = [_record(message) for message in messages]
    times = [r.get(time_column) if reason is None else None for r, reason in records]
    days = local_days(times)
    groups: dict[tuple[str, int], list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    quarantined: dict[int, list[tuple[int, str, dict[str, Any]]]] = defaultdict(list)
    for message, (record, reason), when, day in zip(messages, records, times, days, strict=True):
        if reason is None and day is None:
            reason = (
                f"missing_{time_column}"
                if not (isinstance(when, str) and when.strip())
                else f"unparseable_{time_column}"
            )
        if reason is None:
            groups[(day, message.partition())].append((message.offset(), record))  # type: ignore[index]
        else:
            quarantined[message.partition()].append((message.offset(), reason, record))
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
    reasons: dict[str, int] = defaultdict(int)
    arrived: Interval | None = None
    for partition, bad in sorted(quarantined.items()):
        bad.sort(key=lambda r: r[0])
        body = "".join(
            json.dumps(
                {"reason": reason, "record": json.dumps(record, ensure_ascii=False), "source_file":
                 f"{record['_kafka']['topic']}/{partition}", "line": offset},
                separators=(",", ":"), ensure_ascii=False,
            ) + "\n"
            for offset, reason, record in bad
        )  # fmt: skip
        name = f"stream-p{partition}-o{bad[0][0]}-{bad[-1][0]}.jsonl.gz"
        arrived = arrived or Interval.parse(local_today())
        bucket.write_bytes(f"{undated_prefix(source, arrived)}/{name}", gzip.compress(body.encode(), mtime=0))
        for _, reason, _ in bad:
            reasons[reason] += 1
    if arrived is not None:
        # The load of the arrival day copies them into the quarantine table; it needs a manifest.
        by_day.setdefault(arrived.start.isoformat(), [])
    for day, parts in by_day.items():
        _add_to_manifest(bucket, source, Interval.parse(day), parts)
    return set(by_day), dict(reasons)


def _add_to_manifest(bucket: Bucket, source: str, interval: Interval, parts: list[Part]) -> None:
    """Add `parts` to the day's manifest by compare-and-swap: a concurrent consumer's batch is never dropped.

    Two consumers of one group (a rebalance, a second worker) may land batches
    of the same day at once; an unconditional read-modify-write let the later
    write drop the earlier batch from the manifest while its offsets were
    committed, so it was never loaded nor redelivered.
    """
    key = f"{partition_prefix(source, interval)}/{MANIFEST}"
    for _ in range(MANIFEST_ATTEMPTS):
        data, generation = bucket.read_versioned(key)
        if data is not None:
            manifest = Manifest.from_json(data)
            ensure_feed(manifest, STREAM, f"{bucket.url}/{partition_prefix(source, interval)}")
        else:
            manifest = Manifest(
                source, interval.start.isoformat(), interval.end.isoformat(), run_id="stream", feed=STREAM
            )
        names = {p.name for p in parts}
        manifest.parts = sorted(
            [p for p in manifest.parts if p.name not in names] + parts, key=lambda p: p.name
        )
        manifest.row_count = sum(p.rows for p in manifest.parts)
        manifest.bytes = sum(p.bytes for p in manifest.parts)
        manifest.run_id = hashlib.sha256("".join(p.sha256 for p in manifest.parts).encode()).hexdigest()[:12]
        manifest.extracted_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        manifest.origin = "kafka"
        if bucket.write_if(key, manifest.to_json(), generation):
            return
        # Another consumer wrote it: read again and merge, after a jitter (not a secret: S311 is moot).
        time.sleep(random.uniform(0.01, 0.2))  # noqa: S311
    raise ConcurrentCommitError(f"{bucket.url}/{key}: kept changing over {MANIFEST_ATTEMPTS} attempts")


MANIFEST_ATTEMPTS = 50


def client_config(bootstrap_servers: str, group: str, extra: tuple[str, ...] = ()) -> dict[str, object]:
    """librdkafka's settings: brokers and group, SASL from the environment when set, then `KEY=VALUE`s.

    Raises ValueError for an item that is not KEY=VALUE.
    """
    config: dict[str, object] = {"bootstrap.servers": bootstrap_servers, "group.id": group}
    auth = settings().kafka_auth
    if auth is not None:
        config.update(auth.client_config())
    for item in extra:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--config {item!r} is not KEY=VALUE")
        config[key.strip()] = value.strip()
    return config


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
    time_column: str = "event_time",
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
    crash_before_commit = settings().failpoint_before_offset_commit
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
            days, reasons = land_batch(bucket, source, messages, time_column)
            stats.days |= days
            for reason, count in reasons.items():
                stats.reasons[reason] = stats.reasons.get(reason, 0) + count
            if crash_before_commit:
                log.error("failpoint %s: exiting between landing and offset commit", CRASH_BEFORE_COMMIT)
                os._exit(70)
            last: dict[tuple[str, int], int] = {}
            for m in messages:
                where = (str(m.topic()), int(m.partition() or 0))
                last[where] = max(last.get(where, -1), int(m.offset() or 0))
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
    lag: dict[tuple[str, int], int] = {}
    partitions = consumer.assignment()
    if not partitions:
        return lag
    for committed in consumer.committed(partitions, timeout=10):
        low, high = consumer.get_watermark_offsets(committed, timeout=10, cached=False)
        position = committed.offset if committed.offset >= 0 else low
        lag[(committed.topic, committed.partition)] = max(high - position, 0)
    return lag
