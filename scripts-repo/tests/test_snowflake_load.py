"""Snowflake as the warehouse, against its emulator (fakesnow's server) over HTTP, with key-pair auth.

The loader runs as the real CLI in its own process: PUT to an internal stage,
COPY INTO, one transaction per day. Each test compares what Snowflake holds
with what the DuckDB load of the same landing holds, row for row: the same
classification decides both (`load.prepared`), so a record is loaded or
quarantined, for the same reason, in every warehouse.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
import snowflake.connector
from test_stream import EVENTS, POISON, SOURCE, kafka, stream  # noqa: F401 (kafka: a fixture)

from extract_load.contract import QuarantinePolicy
from extract_load.intervals import Interval
from extract_load.landing.bucket import LocalBucket
from extract_load.landing.manifest import PartitionWriter
from extract_load.settings import FAILPOINT_BEFORE_WAREHOUSE_COMMIT
from extract_load.sources.file import extract_file

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tools" / "fakesnow"))
from emulator import Emulator, throwaway_private_key  # noqa: E402

# What the raw table holds, as compared across warehouses (the record compared as parsed JSON).
RAW_COLUMNS = (
    "event_time, user_id, event_type, transaction_category, miles_amount, platform, utm_source, country,"
    " _event_time_local, _interval_start, _source_file, _load_id, _loaded_at"
)
QUARANTINE_COLUMNS = "reason, _interval_start, _source_file, _load_id, _loaded_at"
LOADS_COLUMNS = "source, interval_start, interval_end, load_id, extract_run_id, rows_in, loaded, quarantined"


@dataclass
class Snowflake:
    emulator: Emulator
    key: Path

    def env(self, key_in_variable: bool = False) -> dict[str, str]:
        """The loader's environment: the endpoint, its user and its private key; no password anywhere.

        The key as a file, or as PEM text in a variable (how a cluster's Secret delivers it).
        """
        key = (
            {"SNOWFLAKE_PRIVATE_KEY": self.key.read_text()}
            if key_in_variable
            else {"SNOWFLAKE_PRIVATE_KEY_FILE": str(self.key)}
        )
        return {**self.emulator.environ(), "SNOWFLAKE_USER": "loader", **key}

    def connect(self, database: str | None = None) -> Any:
        return snowflake.connector.connect(
            account="acme",
            user="admin",
            authenticator="SNOWFLAKE_JWT",
            private_key_file=str(self.key),
            database=database,
            **self.emulator.connect_args(),
        )

    def create_database(self, name: str) -> str:
        """What an account's administrator provisions (the loader creates its schema and tables, not this)."""
        with self.connect() as con:
            con.cursor().execute(f"create database if not exists {name}")
        return f"snowflake://acme/{name}/raw"

    def query(self, database: str, sql: str) -> list[tuple]:
        with self.connect(database) as con:
            return [tuple(row) for row in con.cursor().execute(sql).fetchall()]


@pytest.fixture(scope="module")
def snowflake_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snowflake]:
    base = tmp_path_factory.mktemp("snowflake")
    (base / "db").mkdir()
    with Emulator(base / "db", base / "emulator.log") as emulator:
        yield Snowflake(emulator, throwaway_private_key(base / "loader.p8"))


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "extract_load.cli", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def load(bucket: Path, warehouse: str, days: list[str], *extra: str, env: dict[str, str] | None = None,
         source: str = "events") -> subprocess.CompletedProcess:  # fmt: skip
    end = (dt.date.fromisoformat(max(days)) + dt.timedelta(days=1)).isoformat()
    return cli(
        "load", "--source", source, "--start", min(days), "--end", end, "--bucket", str(bucket),
        "--warehouse", warehouse, "--max-quarantine-ratio", "1", *extra, env=env,
    )  # fmt: skip


def results(done: subprocess.CompletedProcess) -> list[dict]:
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def snapshot(query: Any, source: str = "events") -> dict[str, list[tuple]]:
    """Every table a load writes, in a fixed order, the record parsed (each warehouse prints JSON its way)."""
    raw = query(
        f"select {RAW_COLUMNS}, _record from raw.{source} order by _source_file, _interval_start, 1, 2, 3"
    )
    quarantine = query(f"select {QUARANTINE_COLUMNS}, _record from raw.{source}_quarantine order by 2, 3, 6")
    loads = query(f"select {LOADS_COLUMNS} from raw._loads order by 2")
    # Sorted whole: rows equal in the ordering columns (hostile copies of one event) come in any order.
    return {
        "raw": sorted(((*row[:-1], json.loads(row[-1])) for row in raw), key=repr),
        "quarantine": sorted((tuple(row) for row in quarantine), key=repr),
        "loads": [tuple(row) for row in loads],
    }


def dirty_copy(sample: Path, path: Path) -> int:
    """The sample export with hostile rows added; returns how many were added."""
    with sample.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    good = rows[0]
    hostile = [
        {**good, "event_time": "not a time"},  # undatable: quarantined by the extract
        {**good, "event_time": ""},
        {**good, "miles_amount": "NaN"},
        {**good, "miles_amount": "-Infinity"},
        {**good, "user_id": ""},
        {**good, "event_type": "x" * 200_000},  # oversized
        {**good, "country": "\u202e\u0000SG"},  # control characters
        {**good, "event_time": "9999-12-31 23:59:59"},
        good,  # an exact duplicate delivery: kept twice in raw, once in fct_events (dbt's job)
    ]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(good))
        writer.writeheader()
        writer.writerows(rows + hostile)
    return len(hostile)


@pytest.mark.parametrize("variant", ["sample", "dirty"])
def test_an_export_loads_into_snowflake_as_into_duckdb_and_a_rerun_changes_nothing(
    snowflake_emulator: Snowflake, sample_export: Path, tmp_path: Path, variant: str
) -> None:
    export = sample_export
    if variant == "dirty":
        export = tmp_path / "dirty.csv"
        dirty_copy(sample_export, export)
    bucket = LocalBucket(tmp_path / "bucket")
    extracted = extract_file(str(export), bucket, None, "events", policy=QuarantinePolicy(max_ratio=1.0))
    days = sorted(m.interval_start for m in extracted.manifests)
    warehouse = snowflake_emulator.create_database(f"analytics_{variant}")

    loaded = results(load(bucket.root, warehouse, days, env=snowflake_emulator.env()))
    # in = loaded + quarantined, each day and in total, against the extract's own count.
    assert [r["interval_start"] for r in loaded] == days
    assert all(r["rows_in"] == r["loaded"] + r["quarantined"] for r in loaded)
    assert sum(r["rows_in"] for r in loaded) == extracted.rows_in - extracted.outside_interval
    database = f"analytics_{variant}"
    held = snowflake_emulator.query(
        database, "select (select count(*) from raw.events), (select count(*) from raw.events_quarantine)"
    )[0]
    assert held == (sum(r["loaded"] for r in loaded), sum(r["quarantined"] for r in loaded))
    if variant == "dirty":
        assert held[1] >= 5, "the hostile rows are quarantined, each with its reason"

    def on_snowflake(sql: str) -> list[tuple]:
        return snowflake_emulator.query(database, sql)

    in_snowflake = snapshot(on_snowflake)
    # The same landing loaded into DuckDB: the same rows, the same quarantine with the same reasons.
    db = tmp_path / "w.duckdb"
    assert load(bucket.root, f"duckdb://{db}", days).returncode == 0
    with duckdb.connect(str(db), read_only=True) as con:
        in_duckdb = snapshot(lambda sql: con.execute(sql).fetchall())
    assert in_snowflake == in_duckdb

    # A re-run of every day leaves every table as it was.
    again = results(load(bucket.root, warehouse, days, env=snowflake_emulator.env()))
    assert again == [{**r, "seconds": a["seconds"]} for r, a in zip(loaded, again, strict=True)]
    assert snapshot(on_snowflake) == in_snowflake


def land(bucket: LocalBucket, day: Interval, users: int, tag: str) -> None:
    writer = PartitionWriter(bucket, "events", day, origin="test", part_rows=500)
    writer.write(
        [{"event_time": f"{day.start} {i % 24:02d}:00:00", "user_id": f"{tag}_{i}", "event_type": "like"}
         for i in range(users)]
    )  # fmt: skip
    writer.commit()


def test_a_load_killed_before_its_commit_leaves_the_day_as_it_was(
    tmp_path: Path, snowflake_emulator: Snowflake
) -> None:
    day = Interval.parse("2025-03-05")
    bucket = LocalBucket(tmp_path / "bucket")
    warehouse = snowflake_emulator.create_database("analytics_killed")
    land(bucket, day, 1_000, "first")
    assert results(load(bucket.root, warehouse, ["2025-03-05"], env=snowflake_emulator.env()))
    before = snapshot(lambda sql: snowflake_emulator.query("analytics_killed", sql))

    land(bucket, day, 1_500, "second")  # a re-delivery of the day, then a crash inside its load's transaction
    env = {**snowflake_emulator.env(), FAILPOINT_BEFORE_WAREHOUSE_COMMIT: "1"}
    killed = load(bucket.root, warehouse, ["2025-03-05"], env=env)
    assert killed.returncode == -9, killed.stderr[-2000:]
    # Another session sees the day as it was: the deletes and the COPY of the dead one are not committed.
    assert snapshot(lambda sql: snowflake_emulator.query("analytics_killed", sql)) == before

    # Until Snowflake ends the dead client's session, its transaction holds the day (a re-run waits for
    # the lock, at most the loader's LOCK_TIMEOUT, then fails). Ending it rolls the transaction back
    # (here: the emulator restarts, keeping what was committed); then the re-run replaces the day whole.
    snowflake_emulator.emulator.restart()
    assert snapshot(lambda sql: snowflake_emulator.query("analytics_killed", sql)) == before
    done = results(load(bucket.root, warehouse, ["2025-03-05"], env=snowflake_emulator.env()))
    assert [(r["rows_in"], r["loaded"]) for r in done] == [(1_500, 1_500)]
    users = snowflake_emulator.query(
        "analytics_killed", "select count(*), count(distinct user_id), min(user_id) from raw.events"
    )
    assert users == [(1_500, 1_500, "second_0")]


def test_a_kafka_stream_lands_and_loads_into_snowflake_every_message_once(
    kafka: str,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
    snowflake_emulator: Snowflake,
) -> None:
    done = stream(kafka, tmp_path / "bucket")
    assert done.returncode == 0, done.stderr[-3000:]
    stats = json.loads(done.stdout.splitlines()[-1])
    messages = len(EVENTS) + len(POISON) + 1
    assert stats["messages"] == messages
    warehouse = snowflake_emulator.create_database("analytics_stream")
    bucket = tmp_path / "bucket"
    days = sorted(stats["days"])
    loaded = [
        result
        for day in days  # the days the stream touched, each loaded alone, as the DAG does
        for result in results(load(bucket, warehouse, [day], source=SOURCE, env=snowflake_emulator.env(True)))
    ]
    assert sum(r["rows_in"] for r in loaded) == messages
    assert sum(r["loaded"] for r in loaded) == len(EVENTS)
    assert sum(r["quarantined"] for r in loaded) == len(POISON) + 1  # NON_STANDARD: by its load
    rows = snowflake_emulator.query(
        "analytics_stream",
        "select count(*), count(distinct _record:_kafka:partition || '/' || _record:_kafka:offset)"
        f" from raw.{SOURCE}",
    )
    assert rows == [(len(EVENTS), len(EVENTS))], "every event once, by its partition and offset"
    reasons = dict(
        snowflake_emulator.query(
            "analytics_stream", f"select reason, count(*) from raw.{SOURCE}_quarantine group by 1"
        )
    )
    assert reasons["non_standard_json"] == 1 and sum(reasons.values()) == len(POISON) + 1
    quarantined = snowflake_emulator.query(
        "analytics_stream", f"select count(*) from raw.{SOURCE}_quarantine where _record like '%u_nan%'"
    )
    assert quarantined == [(1,)]
