"""Hostile input ends loaded once or quarantined with a reason, whatever the host.

Each case here once passed every check or depended on where the process ran:
non-finite numbers were loaded (DuckDB's `NaN >= 0` is true) and made the
miles totals NaN; JSON's non-standard constants were landed as they came; a
naive time outside the listed formats was read in the host's time zone.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest


def cli(*args: str, tz: str = "UTC") -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "extract_load.cli", "--log-format", "json", *args],
        env={**os.environ, "TZ": tz},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def land_and_load(export: Path, tmp_path: Path, tz: str = "UTC") -> Path:
    bucket, db = tmp_path / f"bucket-{tz.replace('/', '-')}", tmp_path / f"w-{tz.replace('/', '-')}.duckdb"
    lenient = ("--max-quarantine-ratio", "1")
    days = cli("extract-file", "--path", str(export), "--bucket", str(bucket), *lenient, tz=tz)[:-1]
    first, last = days[0]["interval_start"], days[-1]["interval_start"]
    end = (dt.date.fromisoformat(str(last)) + dt.timedelta(days=1)).isoformat()
    load = ("load", "--start", str(first), "--end", end, "--bucket", str(bucket), "--warehouse", str(db))
    cli(*load, *lenient, tz=tz)
    return db


def test_non_finite_miles_are_quarantined_and_totals_stay_finite(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    amounts = ["NaN", "Infinity", "-inf", "1e400", "nan", "12.5"]
    export.write_text(
        "event_time,user_id,event_type,miles_amount\n"
        + "".join(f"2025-03-05 10:0{i}:00,u_{i},miles_earned,{a}\n" for i, a in enumerate(amounts))
    )
    db = land_and_load(export, tmp_path)
    with duckdb.connect(str(db), read_only=True) as con:
        reasons = dict(
            con.execute("select reason, count(*) from raw.events_quarantine group by 1").fetchall()
        )
        total = con.execute("select sum(miles_amount::double) from raw.events").fetchone()[0]
    assert reasons == {"non_finite_miles_amount": 5}
    assert total == 12.5


def test_json_constants_outside_the_standard_are_quarantined_wherever_they_are(tmp_path: Path) -> None:
    head = '{"event_time": "2025-03-05 10:0%d:00", "user_id": "%s", "event_type": "%s"'
    lines = [
        head % (0, "u_1", "miles_earned") + ', "miles_amount": NaN}',
        head % (1, "u_2", "like") + ', "score": -Infinity}',
        # The same words inside strings are text, not constants.
        head % (2, "NaN", "like") + ', "note": "Infinity \\"NaN\\""}',
        head % (3, "u_4", "miles_earned") + ', "miles_amount": 10}',
    ]
    export = tmp_path / "export.jsonl"
    export.write_text("\n".join(lines) + "\n")
    bucket = tmp_path / "bucket"
    *days, file = cli(
        "extract-file", "--path", str(export), "--bucket", str(bucket), "--max-quarantine-ratio", "1"
    )
    # A record that is not standard JSON never lands: no warehouse's JSON type would take it.
    assert (file["quarantined"], file["reasons"], days[0]["rows"]) == (2, {"non_standard_json": 2}, 2)
    cli("load", "--start", "2025-03-05", "--bucket", str(bucket), "--warehouse", str(tmp_path / "w.duckdb"))
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert sorted(r[0] for r in con.execute("select user_id from raw.events").fetchall()) == [
            "NaN",
            "u_4",
        ]


HOST_ZONES = ["UTC", "Asia/Singapore", "America/New_York", "Pacific/Kiritimati"]


@pytest.mark.parametrize("tz", HOST_ZONES)
def test_times_parse_the_same_on_every_host(tz: str, tmp_path: Path) -> None:
    """A naive time is local (GMT+8) as exported, in any form; a zoned one is converted; never the host's."""
    times = {
        "2025-03-05T10:00": "2025-03-05 10:00:00",  # naive ISO outside the listed formats
        "2025-03-05": "2025-03-05 00:00:00",  # a bare date
        "2025-03-05 23:30:00Z": "2025-03-06 07:30:00",  # UTC, the next local day
        "2025-03-05T10:00:00+08:00": "2025-03-05 10:00:00",
        "2025-03-05 20:00:00-05:00": "2025-03-06 09:00:00",
        "2025-03-05 10:00:00.5": "2025-03-05 10:00:00.5",
    }
    export = tmp_path / "export.csv"
    export.write_text(
        "event_time,user_id,event_type\n" + "".join(f"{t},u_{i},like\n" for i, t in enumerate(times))
    )
    db = land_and_load(export, tmp_path, tz)
    with duckdb.connect(str(db), read_only=True) as con:
        parsed = dict(con.execute("select event_time, _event_time_local::varchar from raw.events").fetchall())
        days = dict(con.execute("select event_time, _interval_start::varchar from raw.events").fetchall())
    assert {t: p.removesuffix(".000000") for t, p in parsed.items()} == {
        t: p.removesuffix(".000000") for t, p in times.items()
    }
    assert all(days[t] == times[t][:10] for t in times)


def test_dates_no_event_can_have_are_quarantined_not_crashed_on(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text(
        "event_time,user_id,event_type\n"
        "2025-03-05 10:00:00,u_1,like\n"
        "9999-12-31 23:59:59,u_2,like\n"
        "0001-01-01 00:00:00,u_3,like\n"
        "2025-03-05 11:00:00,u_4,like\n"
    )
    *days, file = cli(
        "extract-file", "--path", str(export), "--bucket", str(tmp_path / "b"), "--max-quarantine-ratio", "1"
    )
    assert [d["interval_start"] for d in days] == ["2025-03-05"]
    assert file["reasons"] == {"event_time_out_of_range": 2} and file["landed"] == 2


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "extract_load.cli", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def landed_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An export, the day it landed and its load: each case below works on a copy."""
    folder = tmp_path_factory.mktemp("landed")
    export = folder / "export.csv"
    export.write_text("event_time,user_id,event_type\n2025-03-05 10:00:00,u_1,like\n")
    bucket, db = folder / "bucket", folder / "w.duckdb"
    cli("extract-file", "--path", str(export), "--bucket", str(bucket))
    cli("load", "--start", "2025-03-05", "--bucket", str(bucket), "--warehouse", str(db))
    return folder


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--source", "events/"),  # deleted the day's landing, reporting success
        ("--source", "events; drop table raw.events"),
        ("--source", "../events"),
        ("--schema", "raw; create table pwned (a int)"),
        ("--schema", 'raw"."x'),
    ],
)
def test_names_that_would_be_sql_or_paths_are_refused_before_anything_runs(
    option: str, value: str, landed_day: Path, tmp_path: Path
) -> None:
    shutil.copytree(landed_day, tmp_path, dirs_exist_ok=True)
    export, bucket, db = tmp_path / "export.csv", tmp_path / "bucket", tmp_path / "w.duckdb"
    landed = sorted(p.relative_to(bucket) for p in bucket.rglob("*"))

    args = {"--source": "events", "--schema": "raw", option: value}
    schema = ("--schema", args["--schema"])
    for command in (
        ("load", "--start", "2025-03-05", "--bucket", str(bucket), "--warehouse", str(db), *schema),
        ("extract-file", "--path", str(export), "--bucket", str(bucket)),
        ("prune", "--bucket", str(bucket), "--keep-days", "1"),
    ):
        if option == "--schema" and command[0] != "load":
            continue
        refused = run_cli(*command, "--source", args["--source"])
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "is not a valid name" in refused.stderr
    assert sorted(p.relative_to(bucket) for p in bucket.rglob("*")) == landed
    with duckdb.connect(str(db), read_only=True) as con:
        found = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables"
        ).fetchall()
    tables = {r[0] for r in found}
    assert tables == {"raw.events", "raw.events_quarantine", "raw._loads"}


def test_a_drive_file_id_cannot_write_outside_its_folder(tmp_path: Path) -> None:
    refused = run_cli(
        "extract-drive", "--source", "events", "--file-id", "../../escape", "--bucket", str(tmp_path)
    )
    assert refused.returncode == 2 and "Drive file id" in refused.stderr


def test_a_stray_date_in_a_file_is_refused_not_landed_as_years_of_empty_days(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    rows = [f"2025-03-0{5 + i % 3} 10:00:00,u_{i},like" for i in range(30)] + [
        "2015-03-05 10:00:00,u_typo,like"
    ]
    export.write_text("event_time,user_id,event_type\n" + "\n".join(rows) + "\n")
    bucket = tmp_path / "bucket"
    refused = run_cli("extract-file", "--path", str(export), "--bucket", str(bucket))
    assert refused.returncode == 1
    assert "span 2015-03-05 to 2025-03-07, 3,656 days, more than --max-days 400" in refused.stderr
    assert "2015-03: 1" in refused.stderr and "2025-03: 30" in refused.stderr
    assert not bucket.exists() or not list(bucket.rglob("_manifest.json"))
    described = run_cli("describe-file", "--path", str(export))
    assert described.returncode == 1 and "--max-days 400" in described.stderr
    # With the days asked for, the stray record is counted as outside them, not lost.
    *days, file = cli("extract-file", "--path", str(export), "--bucket", str(bucket),
                      "--start", "2025-03-05", "--end", "2025-03-08")  # fmt: skip
    assert len(days) == 3 and (file["landed"], file["outside_interval"]) == (30, 1)
