"""House rules every DAG must follow, enforced instead of trusted to review."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from conftest import DAGS_FOLDER

OWNERS = {"data-platform"}
TAGS = {"events", "extract-load", "dbt", "dashboard", "docs", "maintenance", "streaming", "build"}
# Calls that do work (clock, network, metadata DB, warehouse) and so must never
# run while a DAG file is parsed; they belong inside a task.
PARSE_TIME_FORBIDDEN = {
    "now",
    "utcnow",
    "today",
    "get",
    "get_connection",
    "connect",
    "urlopen",
    "run",
    "Popen",
}
DAG_FILES = sorted(p for p in DAGS_FOLDER.glob("*.py"))


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(DAGS_FOLDER))


def test_every_dag_file_imports(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert len(dagbag.dags) >= 1
    assert {
        "events_ingest",
        "dbt_transform",
        "events_stream",
        "dbt_image_refresh",
        "cloud_build",
        "platform_maintenance",
    } <= set(dagbag.dags)


def test_the_dag_processor_parses_dag_files_only(dagbag: DagBag) -> None:
    parsed = {Path(path).relative_to(DAGS_FOLDER).parts[0] for path in dagbag.file_last_changed}
    assert parsed and "pipeline_runtime" not in parsed  # .airflowignore: helpers are imported, not parsed


def test_dags_follow_house_rules(dagbag: DagBag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags and set(dag.tags) <= TAGS, f"{dag_id}: tags {dag.tags} not in {sorted(TAGS)}"
        assert dag.doc_md, f"{dag_id}: say what the DAG does in doc_md"
        assert dag.max_active_runs is not None and dag.max_active_runs <= 4, dag_id
        assert dag.catchup is False, f"{dag_id}: backfill explicitly, never by accident"
        for task in dag.tasks:
            where = f"{dag_id}.{task.task_id}"
            assert task.owner in OWNERS, where
            assert task.retries >= 1, f"{where}: tasks must retry"
            assert task.execution_timeout is not None, f"{where}: needs execution_timeout"
            assert task.execution_timeout <= dt.timedelta(hours=3), where
            assert task.on_failure_callback, f"{where}: failures must alert"


def _task_bodies(tree: ast.AST) -> set[ast.AST]:
    """Function bodies that only run inside a task (decorated with @task...)."""
    bodies: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                name = ast.unparse(target)
                if name == "task" or name.startswith("task."):
                    bodies.update(ast.walk(node))
    return bodies


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_no_work_at_parse_time(path: Path) -> None:
    tree = ast.parse(path.read_text())
    in_tasks = _task_bodies(tree)
    offending = [
        f"line {node.lineno}: {ast.unparse(node)[:60]}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and node not in in_tasks
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in PARSE_TIME_FORBIDDEN
    ]
    assert offending == [], f"{path.name} does work at parse time: {offending}"


def test_dbt_transform_renders_each_model_with_its_tests_from_the_manifest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PLATFORM_DBT_EXECUTION=per_model (containers and pods): one `dbt build` per model."""
    import json

    from pipeline_runtime import dbt_project

    monkeypatch.setenv("PLATFORM_DBT_EXECUTION", "per_model")
    dag = DagBag(dag_folder=str(DAGS_FOLDER / "dbt_transform.py")).dags["dbt_transform"]
    manifest = json.loads(dbt_project.manifest_path().read_text())
    models = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    assert len(models) >= 11
    for model in models:
        # One task per model: `dbt build` runs it, then its data tests, before anything downstream.
        assert f"dbt.{model}_model_build" in dag.task_ids, model
    # Source freshness is checked before the first model reads the source.
    assert dag.get_task("dbt.stg_events_model_build").upstream_task_ids == {"dbt.raw_events_source"}
    assert dag.get_task("dbt.fct_events_model_build").upstream_task_ids == {"dbt.stg_events_model_build"}
    # A test that reads two models waits for both, and the dashboard for every leaf.
    relationships = next(t for t in dag.task_ids if t.startswith("dbt.relationships_fct_events"))
    assert dag.get_task(relationships).upstream_task_ids == {
        "dbt.fct_events_model_build",
        "dbt.dim_users_model_build",
    }
    assert relationships in dag.get_task("publish_dashboard").upstream_task_ids
    # BI tools read a copy made only from tables whose tests passed.
    assert (
        dag.get_task("publish_warehouse_snapshot").upstream_task_ids
        == dag.get_task("publish_dashboard").upstream_task_ids
    )
    # The docs are generated once every model passed; the data exports read the docs' columns.
    assert (
        dag.get_task("publish_docs").upstream_task_ids == dag.get_task("publish_dashboard").upstream_task_ids
    )
    assert dag.get_task("publish_data").upstream_task_ids == {"publish_docs"}
    assert dag.get_task("publish_docs").pool == dag.get_task("publish_data").pool == "warehouse"
    run = dag.get_task("dbt.fct_events_model_build")
    assert run.env["DBT_EXCLUDE_RESOURCE_TYPES"] == "unit_test"  # unit tests are CI's (ADR 0009)
    assert run.pool == "warehouse"


def test_dbt_transform_in_watcher_mode_runs_one_build_and_reports_each_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Watcher mode (docs/adr/0018), the local runner's default: one build, a sensor per model and
    per model's tests."""
    from pipeline_runtime.settings import settings

    assert settings().runner == "local" and settings().dbt_execution == "watcher"
    dag = DagBag(dag_folder=str(DAGS_FOLDER / "dbt_transform.py")).dags["dbt_transform"]
    producer = dag.get_task("dbt.dbt_producer_watcher")
    assert type(producer).__name__ == "DbtProducerWatcherOperator"
    assert producer.pool == "warehouse"
    # Its retry only restores what the build reported (Cosmos never runs the build twice): at once.
    assert producer.retries == 1 and producer.retry_delay.total_seconds() == 0
    sensors = [t for t in dag.tasks if t.task_id.startswith("dbt.") and "producer" not in t.task_id]
    assert {type(t).__name__ for t in sensors} == {
        "DbtRunWatcherOperator",
        "DbtTestWatcherOperator",
        "DbtSourceWatcherOperator",
    }
    # Each model a task, then its tests a task: a failing test stops what depends on the model.
    assert dag.get_task("dbt.fct_events.test").upstream_task_ids == {"dbt.fct_events.run"}
    assert dag.get_task("dbt.fct_user_days.run").upstream_task_ids == {"dbt.fct_events.test"}
    # Every sensor starts after the build, whatever its outcome, so it never waits on a build that
    # has not started (a run that executes one task at a time: `airflow dags test`).
    roots = [t for t in sensors if not t.upstream_task_ids - {producer.task_id}]
    assert [t.task_id for t in roots] == ["dbt.raw_events_source"]
    assert roots[0].upstream_task_ids == {producer.task_id} and roots[0].trigger_rule == "all_done"
    assert "publish_dashboard" in dag.get_task("dbt.dbt_producer_watcher_done").downstream_task_ids


def test_watcher_mode_is_refused_where_it_is_not_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline_runtime import dbt_project
    from pipeline_runtime.settings import settings

    monkeypatch.setenv("PLATFORM_RUNNER", "container")
    assert settings().dbt_execution == "per_model"  # the default in containers and pods
    monkeypatch.setenv("PLATFORM_DBT_EXECUTION", "watcher")
    with pytest.raises(ValueError, match="PLATFORM_RUNNER=container"):
        dbt_project.watcher()
    monkeypatch.setenv("PLATFORM_DBT_EXECUTION", "batch")
    with pytest.raises(ValueError, match="PLATFORM_DBT_EXECUTION='batch'"):
        settings()


def test_events_ingest_maps_extract_then_load_per_source_and_announces_raw_tables(dagbag: DagBag) -> None:
    from airflow.sdk import AssetAlias

    dag = dagbag.dags["events_ingest"]
    assert dag.get_task("ingest.extract").upstream_task_ids == {"plan"}
    load = dag.get_task("ingest.load")
    assert load.upstream_task_ids == {"ingest.extract"} and load.pool == "warehouse"
    assert AssetAlias("raw_tables") in load.outlets
    # dbt_transform runs when any raw table announced through the alias changes.
    assert "raw_tables" in str(dagbag.dags["dbt_transform"].timetable.asset_condition)


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_each_dag_file_parses_quickly(path: Path, record_testsuite_property) -> None:
    """The target is 0.5 s a file; only a clear regression (2 s) fails, so a busy machine does not."""
    import time

    DagBag(dag_folder=str(path))  # warm: imports shared by every file are paid once per process
    started = time.perf_counter()
    bag = DagBag(dag_folder=str(path))
    seconds = time.perf_counter() - started
    record_testsuite_property(f"parse_seconds {path.name}", f"{seconds:.3f}")  # `make test` prints it
    print(f"{path.name}: parsed in {seconds:.3f}s")
    assert bag.import_errors == {}
    assert seconds < 2.0, f"{path.name} took {seconds:.2f}s to parse (target 0.5 s)"


def test_daily_ingest_has_real_intervals_and_a_freshness_deadline_when_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pendulum

    monkeypatch.setenv("PLATFORM_DATA_FRESH_BY", "06:30")
    dag = DagBag(dag_folder=str(DAGS_FOLDER / "events_ingest.py")).dags["events_ingest"]
    # One local day per run (Airflow 3's default timetable would give an empty interval).
    from airflow.serialization.encoders import coerce_to_core_timetable

    interval = coerce_to_core_timetable(dag.timetable).infer_manual_data_interval(
        run_after=pendulum.datetime(2025, 3, 5, 16, 0, tz="UTC")  # 00:00 on 6 March in GMT+8
    )
    assert (interval.end - interval.start) == dt.timedelta(days=1)
    (deadline,) = dag.deadline
    assert deadline.interval == dt.timedelta(hours=30, minutes=30)  # the day, then 06:30 next morning
    assert deadline.callback.path.endswith("notify_deadline_missed")


def test_cloud_build_takes_trigger_and_project_from_configuration(dagbag: DagBag) -> None:
    from airflow.providers.google.cloud.operators.cloud_build import CloudBuildRunBuildTriggerOperator

    (build,) = dagbag.dags["cloud_build"].tasks
    assert isinstance(build, CloudBuildRunBuildTriggerOperator)
    # The trigger id is looked up in a Variable per component; the project comes from the connection.
    assert build.trigger_id == "{{ var.json.cloud_build_triggers[params.component] }}"
    assert build.gcp_conn_id == "google_cloud_default" and build.project_id is None
    assert build.source == {"tag_name": "{{ params.ref }}"}


def test_maintenance_cleans_metadata_logs_and_every_sources_bucket(dagbag: DagBag) -> None:
    dag = dagbag.dags["platform_maintenance"]
    assert {"clean_metadata_db", "clean_task_logs", "sources", "prune_bucket"} == set(dag.task_ids)
    assert dag.get_task("prune_bucket").upstream_task_ids == {"sources"}
