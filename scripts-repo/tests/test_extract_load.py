from __future__ import annotations

import datetime as dt
import gzip
import json
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from extract_load.intervals import Interval
from extract_load.landing.bucket import LocalBucket
from extract_load.landing.manifest import (
    MANIFEST,
    ManifestError,
    PartitionWriter,
    partition_prefix,
    read_manifest,
)
from extract_load.load.duckdb import QuarantineThresholdError, load_duckdb
from extract_load.sources.http import RestClient
from extract_load.sources.rest import EVENTS_API_PAGINATION, extract_rest

DAY = Interval(dt.date(2025, 3, 5), dt.date(2025, 3, 6))
QUARANTINE_KEY = "quarantine/events/dt=2025-03-05/quarantine.jsonl.gz"


def _count(db: Path, sql: str) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchone()[0]


def test_extract_then_load_is_idempotent(small_stream: Path, api, tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    db = tmp_path / "warehouse.duckdb"
    expected = duckdb.sql(
        f"select count(*) from '{small_stream}' where event_time::date = '2025-03-05'"
    ).fetchone()[0]
    with api(small_stream) as url, RestClient(url) as client:
        first = extract_rest(
            client, bucket, DAY, pagination=replace(EVENTS_API_PAGINATION, page_size=10), part_rows=25
        )
        result = load_duckdb(bucket, "events", DAY, db)
        second = extract_rest(
            client, bucket, DAY, pagination=replace(EVENTS_API_PAGINATION, page_size=5), part_rows=25
        )
        again = load_duckdb(bucket, "events", DAY, db)

    assert first.row_count == second.row_count == expected
    assert len(first.parts) == -(-expected // 30)  # parts are cut at page boundaries
    # The second run replaced the first: only its parts and the manifest remain.
    landed = sorted(Path(k).name for k in bucket.list("raw/events/dt=2025-03-05"))
    assert landed == sorted([MANIFEST, *(p.name for p in second.parts)])
    assert (result.loaded, result.quarantined) == (expected, 0)
    assert (again.loaded, again.quarantined) == (expected, 0)
    assert _count(db, "select count(*) from raw.events") == expected
    assert _count(db, "select count(*) from raw._loads") == 1  # one row per interval, replaced
    assert _count(db, "select count(*) from raw.events where gender is not null") == expected


def _land(bucket: LocalBucket, records: list[object], interval: Interval = DAY) -> None:
    writer = PartitionWriter(bucket, "events", interval, origin="test")
    writer.write(records)  # type: ignore[arg-type]
    writer.commit()


def test_bad_records_are_quarantined_with_a_reason_and_counts_reconcile(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    db = tmp_path / "warehouse.duckdb"
    good = {"event_time": "2025-03-05 10:00:00", "user_id": "u_1", "event_type": "like"}
    records = [
        good,
        {**good, "miles_amount": "12.5", "new_field": {"nested": True}},
        {**good, "event_time": "2025-03-05T02:00:00Z"},  # 10:00 local
        {**good, "user_id": None},
        {**good, "user_id": "   "},
        {**good, "event_type": ""},
        {**good, "event_time": "not a time"},
        {**good, "event_time": None},
        {**good, "event_time": "2025-03-06 00:00:00"},
        {**good, "miles_amount": "twelve"},
        {**good, "miles_amount": "-3"},
        {**good, "event_type": "superlike"},
        ["not", "an", "object"],
    ]
    _land(bucket, records)
    result = load_duckdb(bucket, "events", DAY, db, max_quarantine_ratio=1.0)
    assert (result.rows_in, result.loaded, result.quarantined) == (13, 3, 10)
    with duckdb.connect(str(db), read_only=True) as con:
        reasons = dict(
            con.execute("select reason, count(*) from raw.events_quarantine group by 1").fetchall()
        )
        kept = con.execute("select _record from raw.events where miles_amount = '12.5'").fetchone()[0]
        local = con.execute("select _event_time_local from raw.events order by 1").fetchall()
    assert reasons == {
        "missing_user_id": 2,
        "missing_event_type": 1,
        "unparseable_event_time": 1,
        "missing_event_time": 1,
        "event_time_outside_interval": 1,
        "non_numeric_miles_amount": 1,
        "negative_miles_amount": 1,
        "unknown_event_type": 1,
        "not_a_json_object": 1,
    }
    assert json.loads(kept)["new_field"] == {"nested": True}  # unknown columns are kept
    assert {row[0] for row in local} == {dt.datetime(2025, 3, 5, 10)}
    # The bucket keeps the same quarantine, with reasons and line numbers.
    landed = [json.loads(line) for line in gzip.decompress(bucket.read_bytes(QUARANTINE_KEY)).splitlines()]
    assert len(landed) == 10 and {r["reason"] for r in landed} == set(reasons)
    assert next(r for r in landed if r["reason"] == "unknown_event_type")["line"] == 12


def test_a_quarantine_over_the_threshold_fails_loudly_and_loads_nothing(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    db = tmp_path / "warehouse.duckdb"
    good = {"event_time": "2025-03-05 10:00:00", "user_id": "u_1", "event_type": "like"}
    _land(bucket, [good] * 8 + [{**good, "user_id": ""}] * 2)
    with pytest.raises(QuarantineThresholdError, match=r"2 of 10 records \(20.0%\).*missing_user_id"):
        load_duckdb(bucket, "events", DAY, db, max_quarantine_ratio=0.1)
    assert _count(db, "select count(*) from raw.events") == 0
    assert bucket.exists(QUARANTINE_KEY)
    assert load_duckdb(bucket, "events", DAY, db, max_quarantine_ratio=0.25).loaded == 8


def test_load_refuses_an_unfinished_or_corrupted_extract(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    db = tmp_path / "warehouse.duckdb"
    writer = PartitionWriter(bucket, "events", DAY, origin="test", part_rows=1)
    writer.write([{"event_time": "2025-03-05 10:00:00", "user_id": "u_1", "event_type": "like"}])
    writer._flush_part()  # a part landed, but the run died before its manifest
    with pytest.raises(ManifestError, match="no manifest"):
        load_duckdb(bucket, "events", DAY, db)

    _land(bucket, [{"event_time": "2025-03-05 10:00:00", "user_id": "u_1", "event_type": "like"}])
    # The dead run's part stays until it expires (it could be a concurrent run's): tamper with the listed one.
    listed = read_manifest(bucket, "events", DAY).parts[0].name
    bucket.local_path(f"{partition_prefix('events', DAY)}/{listed}").write_bytes(b"tampered")
    with pytest.raises(ManifestError, match="checksum"):
        load_duckdb(bucket, "events", DAY, db)


def test_an_empty_interval_replaces_the_partition_with_nothing(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    db = tmp_path / "warehouse.duckdb"
    _land(bucket, [{"event_time": "2025-03-05 10:00:00", "user_id": "u_1", "event_type": "like"}])
    assert load_duckdb(bucket, "events", DAY, db).loaded == 1
    _land(bucket, [])  # the source now says the day is empty (e.g. a deletion upstream)
    assert load_duckdb(bucket, "events", DAY, db).rows_in == 0
    assert _count(db, "select count(*) from raw.events") == 0


def test_bucket_keys_cannot_escape_the_bucket(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    with pytest.raises(ValueError, match="escapes"):
        bucket.write_bytes("../outside", b"x")


@pytest.mark.parametrize("batch_bytes", [1, 1 << 30], ids=["a-batch-per-day", "one-batch"])
def test_a_range_loads_day_by_day_semantics_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_bytes: int
) -> None:
    """Days load in order; the first bad one stops the range; what came before it is committed."""
    from extract_load.load import duckdb as warehouse

    monkeypatch.setattr(warehouse, "BATCH_BYTES", batch_bytes)
    bucket = LocalBucket(tmp_path / "bucket")
    db = tmp_path / "warehouse.duckdb"
    days = Interval(dt.date(2025, 3, 1), dt.date(2025, 3, 6)).days()

    def event(day: Interval, user: str) -> dict[str, str]:
        return {"event_time": f"{day.start} 10:00:00", "user_id": user, "event_type": "like"}

    for i, day in enumerate(days):
        records: list[object] = [event(day, f"u_{n}") for n in range(10 + i)]
        if day.start == dt.date(2025, 3, 2):
            records.append({**event(day, "u_x"), "event_time": "2025-03-09 10:00:00"})  # a late neighbour
        if day.start == dt.date(2025, 3, 4):
            records += [{**event(day, ""), "user_id": ""}] * 5  # over the 20% threshold
        _land(bucket, records, day)
    loaded: list[str] = []
    with pytest.raises(QuarantineThresholdError, match="2025-03-04"):
        warehouse.load_duckdb_days(
            bucket, "events", days, db, max_quarantine_ratio=0.2,
            on_loaded=lambda r: loaded.append(r.interval.start.isoformat()),
        )  # fmt: skip
    assert loaded == ["2025-03-01", "2025-03-02", "2025-03-03"]
    by_day = dict(
        duckdb.connect(str(db), read_only=True)
        .execute("select _interval_start::varchar, count(*) from raw.events group by 1")
        .fetchall()
    )
    assert by_day == {"2025-03-01": 10, "2025-03-02": 11, "2025-03-03": 12}
    assert _count(db, "select count(*) from raw.events_quarantine") == 1  # the late neighbour, by reason
    assert _count(db, "select count(*) from raw._loads") == 3
    assert bucket.exists("quarantine/events/dt=2025-03-04/quarantine.jsonl.gz")  # kept for inspection

    # Fixed upstream: the rest of the range loads, and re-running it all changes nothing.
    _land(bucket, [event(days[3], f"u_{n}") for n in range(13)], days[3])
    first = warehouse.load_duckdb_days(bucket, "events", days, db, max_quarantine_ratio=0.2)
    snapshot = (
        duckdb.connect(str(db), read_only=True)
        .execute("select * exclude (_record) from raw.events order by all")
        .fetchall()
    )
    again = warehouse.load_duckdb_days(bucket, "events", days, db, max_quarantine_ratio=0.2)
    assert [r.loaded for r in first] == [r.loaded for r in again] == [10, 11, 12, 13, 14]
    assert (
        duckdb.connect(str(db), read_only=True)
        .execute("select * exclude (_record) from raw.events order by all")
        .fetchall()
        == snapshot
    )
    assert not bucket.exists("quarantine/events/dt=2025-03-04/quarantine.jsonl.gz")
