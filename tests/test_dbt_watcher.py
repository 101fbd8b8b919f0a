"""`dbt_transform` in Cosmos's watcher mode (PLATFORM_DBT_EXECUTION=watcher, docs/adr/0018).

One `dbt build` runs the project and a sensor per model reports that model's
result; a retry runs its model alone. Real `airflow dags test` runs, on the
warehouse `events_ingest` loads and `dbt build` builds:
- a clean run builds exactly what `dbt build` builds, every model reported;
- in a project with a model that fails once (a transient error) and a data
  test that always fails: the transient model is retried alone and succeeds;
  the failing test stops the model after it (never built, its task
  upstream_failed) and the publications; every other model is built.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from test_production_dags import AIRFLOW, DBT, ROOT, content_hashes, dags_test, dbt_build, environment_in

pytestmark = pytest.mark.e2e  # real DAG runs

PRODUCER = "dbt.dbt_producer_watcher"


@pytest.fixture(scope="module")
def daily_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    """One day loaded by events_ingest, and the dbt project built on it by `dbt build`."""
    state = tmp_path_factory.mktemp("watcher")
    with environment_in(state) as env:
        dags_test(env, "events_ingest", logical_date="2025-03-05")
        dbt_build(env)
        yield env, state / "warehouse.duckdb"


def task_states(env: dict[str, str], dag_id: str, logical_date: str) -> dict[str, tuple[str, int]]:
    """Each task's final state and try number in the run of `dag_id` for `logical_date`."""
    db = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "select ti.task_id, ti.state, ti.try_number from task_instance ti join dag_run r"
            " on r.dag_id = ti.dag_id and r.run_id = ti.run_id"
            " where r.dag_id = ? and substr(r.logical_date, 1, 10) = ?",
            [dag_id, logical_date],
        ).fetchall()
    return {task_id: (state, tries) for task_id, state, tries in rows}


def watcher_env(env: dict[str, str], state: Path, warehouse: Path) -> dict[str, str]:
    """The daily environment, on a copy of its warehouse, in watcher mode."""
    copy = state / "warehouse.duckdb"
    shutil.copy(warehouse, copy)
    return {
        **env,
        "PLATFORM_DBT_EXECUTION": "watcher",
        "DBT_DUCKDB_PATH": str(copy),
        "DBT_ARTIFACTS_URL": f"file://{state}/dbt-artifacts",
        "DASHBOARD_DIR": str(state / "dashboard"),
        "DOCS_DIR": str(state / "docs"),
        "DATA_DIR": str(state / "data"),
    }


def test_watcher_mode_builds_what_dbt_build_builds(
    daily_warehouse: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, warehouse = daily_warehouse
    expected = content_hashes(warehouse)
    watched = watcher_env(env, tmp_path, warehouse)
    with duckdb.connect(watched["DBT_DUCKDB_PATH"]) as con:  # nothing left from the first build
        for schema in ("staging", "core", "analytics"):
            con.execute(f"drop schema if exists {schema} cascade")

    dags_test(watched, "dbt_transform", logical_date="2025-03-18")

    assert content_hashes(Path(watched["DBT_DUCKDB_PATH"])) == expected
    states = task_states(watched, "dbt_transform", "2025-03-18")
    models = [task for task in states if task.endswith((".run", "_run"))]
    assert len(models) >= 10 and "dbt.fct_events.run" in models
    # One build, one attempt; each model reported by its own task.
    unsuccessful = {task: state for task, state in states.items() if state[0] != "success"}
    assert unsuccessful == {"refresh_bi_cache": ("skipped", 1)}  # no BI tool here
    assert all(tries == 1 for tries in (states[task][1] for task in models)), states
    assert states[PRODUCER] == ("success", 1)


FLAKY_MODEL = """
-- Fails until the build that ran it has finished (a transient error): the marker
-- file is written by the project's on-run-end hook.
select count(*) as user_days, max(ok) as ok
from {{ ref('fct_user_days') }}
cross join read_csv('{{ env_var("FLAKY_MARKER") }}')
"""
GATED_MODEL = "select user_id from {{ ref('dim_users') }}\n"
AFTER_GATED_MODEL = "select count(*) as users from {{ ref('zz_gated') }}\n"
GATED_YML = """
version: 2
models:
  - name: zz_gated
    columns:
      - name: user_id
        data_tests:
          - accepted_values:
              arguments:
                values: ['nobody']
"""


def broken_project(tmp_path: Path) -> Path:
    """The dbt project, plus a model that fails once and a model whose data test always fails."""
    project = tmp_path / "dbt"
    shutil.copytree(
        ROOT / "dbt-repo", project, ignore=shutil.ignore_patterns(".venv", "target", "logs", "python_tests")
    )
    models = project / "models" / "analytics"
    (models / "zz_flaky.sql").write_text(FLAKY_MODEL)
    (models / "zz_gated.sql").write_text(GATED_MODEL)
    (models / "zz_gated.yml").write_text(GATED_YML)
    (models / "zz_after_gated.sql").write_text(AFTER_GATED_MODEL)
    config = project / "dbt_project.yml"
    # At the end of a build only (`dbt source freshness` runs the hook too, before the build).
    marker = """copy (select 1 as ok) to '{{ env_var("FLAKY_MARKER") }}' (header)"""
    hook = f"{{% if flags.WHICH == 'build' %}}{marker}{{% else %}}select 1{{% endif %}}"
    config.write_text(config.read_text() + f"\non-run-end:\n  - >-\n    {hook}\n")
    return project


def test_watcher_mode_retries_a_failed_model_alone_and_a_failing_test_stops_what_follows(
    daily_warehouse: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, warehouse = daily_warehouse
    project = broken_project(tmp_path)
    watched = {
        **watcher_env(env, tmp_path, warehouse),
        "DBT_PROJECT_DIR": str(project),
        "DBT_PROFILES_DIR": str(project),
        "FLAKY_MARKER": str(tmp_path / "marker.csv"),
    }
    subprocess.run([DBT / "dbt", "parse"], cwd=project, env=watched, check=True, capture_output=True)

    result = subprocess.run(
        [AIRFLOW, "dags", "test", "dbt_transform", "2025-03-19"],
        env=watched, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    states = task_states(watched, "dbt_transform", "2025-03-19")
    log = result.stdout[-6000:]

    # The transient failure: the build reported it; the model's own retry ran it alone and passed.
    assert states["dbt.zz_flaky_run"] == ("success", 2), log
    assert (tmp_path / "marker.csv").exists()
    # The failing test: its task failed (each retry ran the test again), what reads the model never ran.
    assert states["dbt.zz_gated.test"][0] == "failed", log
    assert states["dbt.zz_after_gated_run"][0] == "upstream_failed", log
    with duckdb.connect(watched["DBT_DUCKDB_PATH"], read_only=True) as con:
        built = {
            name for (name,) in con.execute("select table_name from information_schema.tables").fetchall()
        }
    assert "zz_gated" in built and "zz_flaky" in built and "zz_after_gated" not in built
    # Nothing is published from a run whose tests failed.
    publications = ("publish_dashboard", "publish_docs", "publish_data", "publish_warehouse_snapshot")
    for task in publications:
        assert states[task][0] == "upstream_failed", (task, states[task])
    # Every other model passed on its first attempt.
    others = {
        task: state
        for task, state in states.items()
        if task.startswith("dbt.") and "zz_" not in task and task != PRODUCER
    }
    assert all(state == ("success", 1) for state in others.values()), others
    # The build itself failed once; its retry only restored what it had reported.
    assert states[PRODUCER] == ("skipped", 2), states[PRODUCER]
    artifacts = json.loads(
        next((tmp_path / "dbt-artifacts").rglob("dbt.zz_flaky_run/run_results.json")).read_text()
    )
    ran = [r["unique_id"] for r in artifacts["results"] if not r["unique_id"].startswith("operation.")]
    assert ran == ["model.platform.zz_flaky"]
