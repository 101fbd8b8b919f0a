"""The production DAG pair through real `airflow dags test` runs on small data.

`events_ingest` extracts the configured source from a real events API over
HTTP and loads it day by day; `dbt_transform` then builds every model through
Cosmos (source freshness, one `dbt build` per model, detached multi-model
tests) and publishes the dashboard. Each subproject runs from its own venv,
as the local runner does everywhere.
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


def test_events_ingest_then_dbt_transform(environment: dict[str, str], tmp_path: Path) -> None:
    dags_test(environment, "events_ingest", {"start": "2025-03-03", "end": "2025-03-17", "days_per_task": 7})
    db = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        raw = con.execute("select count(*) from raw.events").fetchone()[0]
        loads = con.execute("select count(*), sum(rows_in) from raw._loads").fetchone()
    generated = duckdb.sql(f"select count(*) from '{tmp_path / 'events.parquet'}'").fetchone()[0]
    assert raw == generated and loads == (14, generated)  # 14 daily intervals, every event once

    log = dags_test(environment, "dbt_transform")
    assert "freshness of raw.events" in log  # the source check ran before the models
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*) from core.fct_events").fetchone()[0] == generated
        weeks = con.execute(
            "select count(*), sum(new_users) from analytics.growth_accounting_weekly"
        ).fetchone()
        users = con.execute("select count(*) from core.dim_users").fetchone()[0]
    assert weeks == (2, users)
    assert (tmp_path / "dashboard" / "index.html").is_file()
