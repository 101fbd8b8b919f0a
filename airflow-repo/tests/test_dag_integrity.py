"""House rules every DAG must follow, enforced instead of trusted to review."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from conftest import DAGS_FOLDER

OWNERS = {"data-platform"}
TAGS = {"events", "extract-load", "dbt", "dashboard", "maintenance", "streaming", "build"}
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
    assert "events_elt_daily" in dagbag.dags


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


def test_range_runs_map_one_extract_and_load_per_day(dagbag: DagBag) -> None:
    dag = dagbag.dags["events_elt_daily"]
    assert {"plan_days", "ingest_days.extract", "ingest_days.load", "dbt_build", "publish_dashboard"} <= set(
        dag.task_ids
    )
    assert dag.get_task("ingest_days.load").pool == "warehouse"
    assert dag.get_task("check_source_freshness").upstream_task_ids == {"ingest_days.load"}
    assert dag.get_task("dbt_build").upstream_task_ids == {"check_source_freshness"}
    assert dag.get_task("publish_dashboard").upstream_task_ids == {"dbt_build"}
