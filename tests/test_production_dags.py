"""The other production DAGs through real `airflow dags test` runs on small data.

`events_ingest` then `dbt_transform` run in the end-to-end demo test
(tests/test_pipeline_e2e.py). Here: `dbt_image_refresh` adopting a good dbt
build and refusing a broken one, `events_stream` consuming a real Kafka
protocol broker, and `platform_maintenance` applying retention. Each
subproject runs from its own venv, as the local runner does everywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts-repo" / ".venv" / "bin"
DBT = ROOT / "dbt-repo" / ".venv" / "bin"
AIRFLOW = ROOT / "airflow-repo" / ".venv" / "bin" / "airflow"


@pytest.fixture
def environment(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "airflow-repo" / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(tmp_path / "cosmos"),
        "PLATFORM_RUNNER": "local",
        "PLATFORM_SCRIPTS_CMD": str(SCRIPTS / "extract-load"),
        "PLATFORM_DBT_CMD": str(DBT / "dbt"),
        "PLATFORM_DASHBOARD_CMD": str(DBT / "publish-dashboard"),
        "PLATFORM_SOURCES": "events",
        "BUCKET_URL": str(tmp_path / "bucket"),
        "WAREHOUSE_URL": f"duckdb://{tmp_path / 'warehouse.duckdb'}",
        "DBT_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "DBT_PROJECT_DIR": str(ROOT / "dbt-repo"),
        "DBT_PROFILES_DIR": str(ROOT / "dbt-repo"),
        "DBT_TARGET_PATH": str(tmp_path / "dbt-target"),
        "DBT_LOG_PATH": str(tmp_path / "dbt-logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "DASHBOARD_DIR": str(tmp_path / "dashboard"),
    }
    events = tmp_path / "events.parquet"
    two_weeks = ["--start", "2025-03-03", "--days", "14", "--events", "3000"]
    subprocess.run(
        [SCRIPTS / "extract-load", "generate", "--out", events, *two_weeks],
        check=True,
        capture_output=True,
        env=env,
    )
    url_file = tmp_path / "api.url"
    api = subprocess.Popen(
        [SCRIPTS / "extract-load", "serve-api", "--source", events, "--url-file", url_file],
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        for _ in range(300):
            if url_file.exists() and url_file.read_text().strip():
                break
            assert api.poll() is None, "the events API did not start"
            subprocess.run(["sleep", "0.1"], check=True)
        env["EVENTS_API_URL"] = url_file.read_text().strip()
        subprocess.run([AIRFLOW, "db", "migrate"], check=True, capture_output=True, env=env)
        for pool in ("warehouse", "extract"):
            subprocess.run(
                [AIRFLOW, "pools", "set", pool, "1", pool], check=True, capture_output=True, env=env
            )
        yield env
    finally:
        api.terminate()
        api.wait(timeout=30)


def dags_test(env: dict[str, str], dag_id: str, conf: dict | None = None) -> str:
    command = [str(AIRFLOW), "dags", "test", dag_id, "2025-03-17"]
    if conf:
        command += ["-c", json.dumps(conf)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    runs = subprocess.run(
        [AIRFLOW, "dags", "list-runs", dag_id, "-o", "json"], env=env, capture_output=True, text=True
    )
    # Airflow may print warnings before the JSON document.
    documents = [json.loads(line) for line in runs.stdout.splitlines() if line.startswith("[")]
    states = [run["state"] for document in documents for run in document]
    assert states == ["success"], f"{dag_id}: {states}\n{result.stdout[-5000:]}"
    return result.stdout


def variable(env: dict[str, str], key: str) -> str | None:
    result = subprocess.run([AIRFLOW, "variables", "get", key], env=env, capture_output=True, text=True)
    return result.stdout.strip().splitlines()[-1] if result.returncode == 0 else None


def test_dbt_image_refresh_adopts_a_good_build_and_keeps_it_over_a_broken_one(
    environment: dict[str, str], tmp_path: Path
) -> None:
    # A warehouse with data, as the environment has before its daily refresh.
    dags_test(environment, "events_ingest", {"start": "2025-03-03", "end": "2025-03-05"})
    subprocess.run(
        [DBT / "dbt", "build", "--exclude-resource-type", "unit_test"],
        cwd=ROOT / "dbt-repo",
        env={**environment, "DBT_PROFILES_DIR": str(ROOT / "dbt-repo")},
        check=True,
        capture_output=True,
    )
    good = environment["PLATFORM_DBT_CMD"]
    log = dags_test(environment, "dbt_image_refresh")
    assert "dbt debug" in log or "All checks passed" in log
    assert variable(environment, "dbt_image") == good

    # A new build whose profile is broken: `dbt debug` fails, nothing is recorded.
    broken_profiles = tmp_path / "broken-profile"
    broken_profiles.mkdir()
    (broken_profiles / "profiles.yml").write_text(
        "platform:\n  target: duckdb\n  outputs:\n    duckdb:\n      type: duckdb\n"
        "      path: /nonexistent/dir/warehouse.duckdb\n"
    )
    broken = tmp_path / "dbt-broken"
    broken.write_text(f'#!/bin/sh\nDBT_PROFILES_DIR={broken_profiles} exec {good} "$@"\n')
    broken.chmod(0o755)
    result = subprocess.run(
        [AIRFLOW, "dags", "test", "dbt_image_refresh", "2025-03-18"],
        env={**environment, "PLATFORM_DBT_CMD": str(broken)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "task failed" in result.stdout and "dbt_debug" in result.stdout, result.stdout[-3000:]
    assert "record" not in {
        line.split("task_id=")[1].split()[0]
        for line in result.stdout.splitlines()
        if "[DAG TEST] end task" in line and "task_id=" in line
    }
    assert variable(environment, "dbt_image") == good  # the previous build stays in use


def test_events_stream_lands_micro_batches_and_loads_the_days_touched(
    environment: dict[str, str], tmp_path: Path
) -> None:
    # Generated events as a producer would send them, plus two that are not events.
    events = tmp_path / "events.parquet"
    lines = tmp_path / "topic.jsonl"
    duckdb.sql(f"copy (select * from '{events}' where event_time < '2025-03-05') to '{lines}' (format json)")
    with lines.open("a") as handle:
        handle.write("{not json\n[1, 2]\n")
    sent = sum(1 for _ in lines.open())
    cluster = subprocess.Popen(
        [SCRIPTS / "python", ROOT / "scripts-repo" / "tests" / "kafka_mock_cluster.py", "events", lines, "3"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        bootstrap = cluster.stdout.readline().split()[0]  # type: ignore[union-attr]
        env = {
            **environment,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_TOPIC": "events",
            # Messages without an event time land in their arrival day, where these two broken ones
            # are all there is: 100% quarantined would (rightly) stop the load at the default threshold.
            "MAX_QUARANTINE_RATIO": "1.0",
        }
        dags_test(env, "events_stream", {"max_messages": 100_000, "until_idle": 5})
    finally:
        cluster.stdin.close()  # type: ignore[union-attr]
        cluster.wait(timeout=30)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        loaded = con.execute("select count(*) from raw.events").fetchone()[0]
        quarantined = con.execute("select count(*) from raw.events_quarantine").fetchone()[0]
        days = con.execute("select count(*) from raw._loads").fetchone()[0]
    assert loaded + quarantined == sent and quarantined >= 2  # every message once, bad ones with a reason
    assert days >= 2  # each day the micro-batches touched was loaded


def test_platform_maintenance_keeps_storage_within_retention(
    environment: dict[str, str], tmp_path: Path
) -> None:
    dags_test(environment, "events_ingest", {"start": "2025-03-03", "end": "2025-03-07"})
    old_log = tmp_path / "airflow" / "logs" / "dag_id=old" / "run_id=r" / "task_id=t" / "attempt=1.log"
    old_log.parent.mkdir(parents=True)
    old_log.write_text("an old task log")
    os.utime(old_log, (1_700_000_000, 1_700_000_000))  # November 2023
    recent_log = old_log.with_name("attempt=2.log")
    recent_log.write_text("a log from this week")  # written now: newer than any cutoff
    # The run's reference time is its logical date, 2025-03-17: 12 days keep 2025-03-05 onwards.
    dags_test({**environment, "BUCKET_RETENTION_DAYS": "12"}, "platform_maintenance")
    landed = sorted(p.name for p in (tmp_path / "bucket" / "raw" / "events").iterdir())
    assert landed == ["dt=2025-03-05", "dt=2025-03-06"]
    assert not old_log.exists() and recent_log.exists()
