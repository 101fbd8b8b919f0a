"""The other production DAGs through real `airflow dags test` runs on small data.

`events_ingest` then `dbt_transform` run in the end-to-end demo test
(tests/test_pipeline_e2e.py). Here: `dbt_image_refresh` adopting a good dbt
build and refusing a broken one, `events_stream` consuming a real Kafka
protocol broker, and `platform_maintenance` applying retention. Each
subproject runs from its own venv, as the local runner does everywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
from statsd_mapping import statsd_listener

pytestmark = pytest.mark.e2e  # runs the pipeline: DAG runs, the stack, containers

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts-repo" / ".venv" / "bin"
DBT = ROOT / "dbt-repo" / ".venv" / "bin"
AIRFLOW = ROOT / "airflow-repo" / ".venv" / "bin" / "airflow"


DAYS = ("2025-03-04", "2025-03-05", "2025-03-06")  # logical dates: each run owns the local day before
# Columns that say when and by which run a row was written, not what it holds.
RUN_METADATA = {"_load_id", "_loaded_at", "_source_file", "loaded_at", "load_id", "landed_at", "_built_at"}


@contextmanager
def environment_in(state: Path) -> Iterator[dict[str, str]]:
    """The local configuration (tools/local-env.sh) in `state`; a generated events API serving two weeks."""
    exported = subprocess.run(
        ["bash", "-c", 'source "$ROOT/tools/local-env.sh" && env -0'],
        env={**os.environ, "ROOT": str(ROOT), "STATE_DIR": str(state)},
        capture_output=True,
        check=True,
    )
    env = dict(item.split("=", 1) for item in exported.stdout.decode().split("\0") if "=" in item)
    events = state / "events.parquet"
    two_weeks = ["--start", "2025-03-03", "--days", "14", "--events", "3000"]
    subprocess.run(
        [SCRIPTS / "extract-load", "generate", "--out", events, *two_weeks],
        check=True,
        capture_output=True,
        env=env,
    )
    url_file = state / "api.url"
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
            time.sleep(0.1)
        env["EVENTS_API_URL"] = url_file.read_text().strip()
        subprocess.run([AIRFLOW, "db", "migrate"], check=True, capture_output=True, env=env)
        # Pools and Variables as sandbox declares them, by the command a cluster's bootstrap runs.
        runtime = ROOT / "environments" / "sandbox" / "airflow-runtime.yaml"
        subprocess.run(
            [AIRFLOW.with_name("python"), "-m", "ops.apply_runtime", runtime],
            cwd=ROOT / "airflow-repo", check=True, capture_output=True, env=env,
        )  # fmt: skip
        yield env
    finally:
        api.terminate()
        api.wait(timeout=30)


@pytest.fixture
def environment(tmp_path: Path) -> Iterator[dict[str, str]]:
    with environment_in(tmp_path) as env:
        yield env


@pytest.fixture(scope="module")
def daily_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    """Three scheduled-style daily runs of events_ingest, then the dbt project built on them."""
    state = tmp_path_factory.mktemp("daily")
    with environment_in(state) as env:
        for day in DAYS:
            dags_test(env, "events_ingest", logical_date=day)
        dbt_build(env)
        yield env, state / "warehouse.duckdb"


def dbt_build(env: dict[str, str]) -> None:
    subprocess.run(
        [DBT / "dbt", "build", "--exclude-resource-type", "unit_test"],
        cwd=ROOT / "dbt-repo",
        env={**env, "DBT_TARGET_PATH": str(Path(env["AIRFLOW_HOME"]).parent / "dbt-target")},
        check=True,
        capture_output=True,
    )


def dags_test(
    env: dict[str, str], dag_id: str, conf: dict | None = None, logical_date: str = "2025-03-17"
) -> str:
    command = [str(AIRFLOW), "dags", "test", dag_id, logical_date]
    if conf:
        command += ["-c", json.dumps(conf)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    runs = subprocess.run(
        [AIRFLOW, "dags", "list-runs", dag_id, "-o", "json"], env=env, capture_output=True, text=True
    )
    # Airflow may print warnings before the JSON document.
    documents = [json.loads(line) for line in runs.stdout.splitlines() if line.startswith("[")]
    states = {run["logical_date"][:10]: run["state"] for document in documents for run in document}
    assert states.get(logical_date) == "success", f"{dag_id}: {states}\n{result.stdout[-5000:]}"
    return result.stdout


def content_hashes(db: Path) -> dict[str, tuple[int, str]]:
    """Rows and a digest of every warehouse table's content, ignoring which run wrote each row."""
    hashes = {}
    with duckdb.connect(str(db), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('raw', 'staging', 'core', 'analytics') and table_name <> '_loads' "
            "order by 1, 2"
        ).fetchall()
        for schema, table in tables:
            columns = [
                name
                for (name,) in con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = ? and table_name = ? order by ordinal_position",
                    [schema, table],
                ).fetchall()
                if name not in RUN_METADATA
            ]
            select = ", ".join(f'"{c}"' for c in columns)
            rows = con.execute(f"select {select} from {schema}.{table} order by all").fetchall()
            digest = hashlib.sha256(repr(rows).encode()).hexdigest()
            hashes[f"{schema}.{table}"] = (len(rows), digest)
    return hashes


def test_rerunning_three_intervals_leaves_the_warehouse_identical(
    daily_warehouse: tuple[dict[str, str], Path],
) -> None:
    env, db = daily_warehouse
    before = content_hashes(db)
    assert before["raw.events"][0] > 0 and before["core.fct_events"][0] == before["raw.events"][0]
    with duckdb.connect(str(db), read_only=True) as con:
        loaded = con.execute("select distinct _interval_start from raw.events order by 1").fetchall()
    days = [day.isoformat() for (day,) in loaded]
    assert days == ["2025-03-03", "2025-03-04", "2025-03-05"]  # one local day per scheduled run

    for day in DAYS:  # the same three intervals again, as a backfill would
        dags_test(env, "events_ingest", logical_date=day)
    dbt_build(env)
    assert content_hashes(db) == before
    with duckdb.connect(str(db), read_only=True) as con:
        # The load log keeps one row per interval, the latest load's: a re-run replaced it too.
        assert con.execute("select count(*) from raw._loads").fetchone()[0] == 3


def variable(env: dict[str, str], key: str) -> str | None:
    result = subprocess.run([AIRFLOW, "variables", "get", key], env=env, capture_output=True, text=True)
    return result.stdout.strip().splitlines()[-1] if result.returncode == 0 else None


def test_dbt_image_refresh_adopts_a_good_build_and_keeps_it_over_a_broken_one(
    daily_warehouse: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    environment, _ = daily_warehouse  # a warehouse with data, as before the daily refresh
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
        with statsd_listener() as (port, metrics):
            env = {
                **environment,
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "KAFKA_TOPIC": "events",
                # Messages without an event time land in their arrival day, where these two broken ones
                # are all there is: 100% quarantined would (rightly) stop the load at the default threshold.
                "MAX_QUARANTINE_RATIO": "1.0",
                "AIRFLOW__METRICS__STATSD_ON": "True",
                "AIRFLOW__METRICS__STATSD_PORT": str(port),
            }
            dags_test(env, "events_stream", {"max_messages": 100_000, "until_idle": 5})
            time.sleep(0.5)
    finally:
        cluster.stdin.close()  # type: ignore[union-attr]
        cluster.wait(timeout=30)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        # The stream lands under its own source name, never the batch `events` source's days.
        loaded = con.execute("select count(*) from raw.events_stream").fetchone()[0]
        quarantined = con.execute("select count(*) from raw.events_stream_quarantine").fetchone()[0]
        days = con.execute("select count(*) from raw._loads").fetchone()[0]
    assert loaded + quarantined == sent and quarantined >= 2  # every message once, bad ones with a reason
    assert days >= 2  # each day the micro-batches touched was loaded
    # Airflow's own StatsD metrics were emitted for the tasks of the run, with the DAG as a tag.
    names = {line.split(":", 1)[0] for line in metrics}
    finished = [name for name in names if name.startswith("airflow.ti.finish,")]
    assert any("dag_id=events_stream" in name.split(",") for name in finished), sorted(names)[:20]


def test_platform_maintenance_keeps_storage_within_retention(
    daily_warehouse: tuple[dict[str, str], Path],
) -> None:
    env, db = daily_warehouse
    state = db.parent
    old_log = state / "airflow" / "logs" / "dag_id=old" / "run_id=r" / "task_id=t" / "attempt=1.log"
    old_log.parent.mkdir(parents=True, exist_ok=True)
    old_log.write_text("an old task log")
    os.utime(old_log, (1_700_000_000, 1_700_000_000))  # November 2023
    recent_log = old_log.with_name("attempt=2.log")
    recent_log.write_text("a log from this week")  # written now: newer than any cutoff
    # The run's reference time is its logical date, 2025-03-17: 13 days keep 2025-03-04 onwards.
    dags_test({**env, "BUCKET_RETENTION_DAYS": "13"}, "platform_maintenance")
    landed = sorted(p.name for p in (state / "bucket" / "raw" / "events").iterdir())
    assert landed == ["dt=2025-03-04", "dt=2025-03-05"]
    assert not old_log.exists() and recent_log.exists()
