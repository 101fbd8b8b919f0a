"""Interrupted runs: kill or break an extract or a load half-way, run again,
and check that nothing is lost and nothing is duplicated."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import requests
from test_http_source import Answer, http_server

from extract_load.intervals import Interval
from extract_load.landing.bucket import LocalBucket
from extract_load.landing.manifest import CHECKPOINT, MANIFEST
from extract_load.load.duckdb import load_duckdb
from extract_load.sources.http import Pagination, RestClient
from extract_load.sources.rest import extract_rest

DAY = Interval(dt.date(2025, 3, 5), dt.date(2025, 3, 6))
EVENTS = [
    {"event_time": f"2025-03-05 {h:02d}:{m:02d}:00", "user_id": f"u_{m}", "event_type": "like"}
    for h in range(24)
    for m in range(0, 60, 2)
]  # 720 events


def events_api(fail_from: int | None = None, delay: float = 0.0):
    """Cursor-paged events; from request `fail_from` on it answers 500."""

    def answer(query: dict[str, str], headers: dict[str, str], number: int) -> Answer:
        if fail_from is not None and number >= fail_from:
            return 500, {}, {"error": "down"}
        time.sleep(delay)
        start, size = int(query.get("cursor", 0)), int(query["limit"])
        nxt = str(start + size) if start + size < len(EVENTS) else None
        return 200, {}, {"data": EVENTS[start : start + size], "next_cursor": nxt}

    return answer


PAGES = Pagination(style="cursor", cursor_path="next_cursor", cursor_param="cursor", page_size=40)


def test_a_broken_extract_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    with (
        http_server(events_api(fail_from=6)) as (url, _),
        RestClient(url, max_attempts=2, backoff_seconds=0.01) as c,
        pytest.raises(requests.HTTPError),
    ):
        extract_rest(c, bucket, DAY, pagination=PAGES, part_rows=80)
    prefix = "raw/events/dt=2025-03-05"
    assert bucket.exists(f"{prefix}/{CHECKPOINT}") and not bucket.exists(f"{prefix}/{MANIFEST}")
    saved = json.loads(bucket.read_bytes(f"{prefix}/{CHECKPOINT}"))
    assert saved["state"] == {"cursor": "160"}  # 4 pages of 40 landed as 2 parts

    with http_server(events_api()) as (url, seen), RestClient(url) as client:
        manifest = extract_rest(client, bucket, DAY, pagination=PAGES, part_rows=80)
    assert seen[0][1]["cursor"] == "160", "the second run must start where the first stopped"
    assert manifest.row_count == len(EVENTS) and not bucket.exists(f"{prefix}/{CHECKPOINT}")
    db = tmp_path / "w.duckdb"
    load_duckdb(bucket, "events", DAY, db)
    with duckdb.connect(str(db)) as con:
        assert con.execute("select count(*), count(distinct event_time) from raw.events").fetchone() == (
            720,
            720,
        )


def _cli(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "extract_load.cli", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killing_the_extract_process_mid_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    bucket = tmp_path / "bucket"
    partition = bucket / "raw" / "events" / "dt=2025-03-05"
    args = (
        "extract",
        "--start",
        "2025-03-05",
        "--bucket",
        str(bucket),
        "--page-size",
        "40",
        "--part-rows",
        "40",
    )
    # A short lease: the rerun waits for the killed run's lease to expire, as a retry would (60 s default).
    env = {"EXTRACT_LOAD_LEASE_SECONDS": "5"}
    with http_server(events_api(delay=0.05)) as (url, _):
        process = _cli(*args, env={**env, "EVENTS_API_URL": url})
        deadline = time.monotonic() + 60
        while not (partition / CHECKPOINT).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert (partition / CHECKPOINT).exists() and not (partition / MANIFEST).exists()
        landed_before = json.loads((partition / CHECKPOINT).read_text())["parts"]
        assert 0 < len(landed_before) < len(EVENTS) // 40

        rerun = _cli(*args, env={**env, "EVENTS_API_URL": url})
        out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["rows"] == len(EVENTS)
    assert "resuming events" in err
    loaded = _cli(
        "load",
        "--start",
        "2025-03-05",
        "--bucket",
        str(bucket),
        "--warehouse",
        str(tmp_path / "w.duckdb"),
        env={},
    )
    out, err = loaded.communicate(timeout=120)
    assert loaded.returncode == 0, err
    result = json.loads(out.splitlines()[-1])
    assert (result["rows_in"], result["loaded"], result["quarantined"]) == (720, 720, 0)


def test_killing_the_load_process_mid_run_leaves_the_previous_state(tmp_path: Path) -> None:
    from extract_load.landing.manifest import PartitionWriter

    bucket = LocalBucket(tmp_path / "bucket")
    big = [
        {"event_time": f"2025-03-05 {i % 24:02d}:00:00", "user_id": f"u_{i}", "event_type": "like"}
        for i in range(300_000)
    ]
    writer = PartitionWriter(bucket, "events", DAY, origin="test", part_rows=50_000)
    writer.write(big)
    writer.commit()
    db = tmp_path / "w.duckdb"
    args = ("load", "--start", "2025-03-05", "--bucket", str(bucket.root), "--warehouse", str(db))
    for delay in (0.3, 0.6, 0.9):
        process = _cli(*args, env={})
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        with duckdb.connect(str(db)) as con:
            tables = {
                row[0] for row in con.execute("select table_name from information_schema.tables").fetchall()
            }
            if "events" in tables:
                count = con.execute("select count(*) from raw.events").fetchone()[0]
                assert count in (0, 300_000), "a killed load must commit all of the interval or none"
    done = _cli(*args, env={})
    _, err = done.communicate(timeout=300)
    assert done.returncode == 0, err
    with duckdb.connect(str(db)) as con:
        assert con.execute("select count(*), count(distinct user_id) from raw.events").fetchone() == (
            300_000,
            300_000,
        )
        assert con.execute("select count(*) from raw._loads").fetchone()[0] == 1
