from __future__ import annotations

import datetime as dt
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psycopg2
import pytest

PROJECT_DIR = Path(__file__).resolve().parents[1]
# What the pipeline runs: unit tests are CI's (test_unit_tests_pass), not the data's.
BUILD = ("build", "--exclude-resource-type", "unit_test")
BIN = Path(sys.executable).parent

# The raw table as the loader (scripts-repo) writes it: the contract between them.
RAW_DDL = """
create schema if not exists raw;
create table raw.events (
    event_time varchar, user_id varchar, event_type varchar, transaction_category varchar,
    miles_amount varchar, platform varchar, utm_source varchar, country varchar, gender varchar,
    _event_time_local timestamp not null, _record json not null, _interval_start date not null,
    _source_file varchar not null, _load_id varchar not null, _loaded_at timestamp not null
);
create table raw.events_quarantine (
    _record varchar not null, reason varchar not null, _interval_start date not null,
    _source_file varchar not null, _load_id varchar not null, _loaded_at timestamp not null
);
"""

TYPES = [
    ("miles_earned", "dining", "120.0"),
    ("miles_redeemed", "flight", "1500.0"),
    ("reward_search", "apple", None),
    ("share", None, None),
    ("like", None, None),
]


def raw_row(when: dt.datetime, user: str, kind: int = 0, **overrides: str | None) -> dict:
    event_type, category, miles = TYPES[kind % len(TYPES)]
    row = {
        "event_time": when.isoformat(sep=" "),
        "user_id": user,
        "event_type": event_type,
        "transaction_category": category,
        "miles_amount": miles,
        "platform": ["ios", "android", "web"][kind % 3],
        "utm_source": "organic",
        "country": "SG",
        "gender": None,
    }
    row.update(overrides)
    return row


def insert_raw(db: Path, rows: list[dict], loaded_at: dt.datetime | None = None) -> None:
    """Deliver `rows` as the loader would: each day they touch is loaded again, whole.

    The raw contract (scripts-repo's loader): a load replaces a whole day and
    stamps every row of it with a new load id and its landing time, so a day
    that gains rows is one new load of all of its rows.
    """
    loaded_at = loaded_at or dt.datetime(2025, 3, 1)
    with duckdb.connect(str(db)) as con:
        for row in rows:
            local = dt.datetime.fromisoformat(row["event_time"])
            con.execute(
                "insert into raw.events values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'fixture', 'fixture', ?)",
                [*row.values(), local, json.dumps(row), local.date(), loaded_at],
            )
        days = sorted({dt.datetime.fromisoformat(r["event_time"]).date() for r in rows})
        for day in days:
            con.execute(
                "update raw.events set _load_id = ?, _loaded_at = ? where _interval_start = ?",
                [f"{day}@{loaded_at.isoformat()}", loaded_at, day],
            )


def fixture_rows(weeks: int = 6, users: int = 40, seed: int = 3) -> list[dict]:
    """Users who join in different weeks and skip weeks, deterministically."""
    rng = random.Random(seed)
    start = dt.datetime(2025, 1, 6)
    rows = []
    for u in range(users):
        joined = u % weeks
        for week in range(joined, weeks):
            if week > joined and rng.random() < 0.35:
                continue
            for _ in range(rng.randint(1, 3)):
                when = start + dt.timedelta(days=7 * week + rng.randint(0, 6), seconds=rng.randint(0, 86_399))
                rows.append(raw_row(when, f"u_{u:03d}", rng.randint(0, 4)))
    return rows


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    db = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute(RAW_DDL)
    return db


def dbt_runner(warehouse: Path, workdir: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run dbt against `warehouse`, with its target and logs under `workdir`."""

    def run(
        *args: str, target: str = "duckdb", extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "DBT_DUCKDB_PATH": str(warehouse),
            "DBT_TARGET_PATH": str(workdir / "target"),
            "DBT_LOG_PATH": str(workdir / "logs"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
            "DBT_TARGET": target,
            **(extra_env or {}),
        }
        return subprocess.run(
            [str(BIN / "dbt"), *args, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    return run


@pytest.fixture
def dbt(tmp_path: Path, warehouse: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    return dbt_runner(warehouse, tmp_path)


@dataclass(frozen=True)
class Built:
    """A warehouse with the fixture rows, built once per session for tests that only read it."""

    db: Path
    workdir: Path

    @property
    def run_results(self) -> Path:
        return self.workdir / "target" / "run_results.json"


@pytest.fixture(scope="session")
def built_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Built:
    workdir = tmp_path_factory.mktemp("built")
    db = workdir / "warehouse.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute(RAW_DDL)
    insert_raw(db, fixture_rows())
    result = dbt_runner(db, workdir)(*BUILD)
    assert result.returncode == 0, result.stdout[-3000:]
    return Built(db, workdir)


def query(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


POSTGRES_SERVER = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL server, dropped afterwards."""
    try:
        admin = psycopg2.connect(POSTGRES_SERVER, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        message = f"no PostgreSQL at {POSTGRES_SERVER}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    admin.autocommit = True
    name = f"dbt_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cur:
        cur.execute(f'create database "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
        admin.close()


def connect_postgres(database: str):
    base, _, _ = POSTGRES_SERVER.rpartition("/")
    return psycopg2.connect(f"{base}/{database}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gcs(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The GCS emulator with an `artifacts` bucket; the client finds it through STORAGE_EMULATOR_HOST."""
    port = _free_port()
    process = subprocess.Popen(
        [str(BIN / "gcp-storage-emulator"), "start", "--host", "127.0.0.1", "--port", str(port),
         "--in-memory", "--default-bucket", "artifacts", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail("the GCS emulator did not start")
        time.sleep(0.1)
    host = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", host)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "local-emulator")
    try:
        yield host
    finally:
        process.terminate()
        process.wait(timeout=10)


def postgres_env(database: str) -> dict[str, str]:
    """profiles.yml's postgres settings for `database` on the test server."""
    from urllib.parse import urlparse

    server = urlparse(POSTGRES_SERVER)
    return {
        "DBT_POSTGRES_HOST": server.hostname or "127.0.0.1",
        "DBT_POSTGRES_PORT": str(server.port or 5432),
        "DBT_POSTGRES_USER": server.username or "postgres",
        "DBT_POSTGRES_PASSWORD": server.password or "",
        "DBT_POSTGRES_DATABASE": database,
    }
