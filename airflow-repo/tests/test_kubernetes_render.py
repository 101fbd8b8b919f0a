"""Kubernetes mode renders every task as a pod of the pinned image with the local run's arguments.

There is no cluster here, so this runs the real DAGs with `dag.test()` in
Kubernetes mode and stops at the one call that would reach a cluster: each
KubernetesPodOperator builds its full pod request (the object it would send
to the API server) and the test records it instead of sending it. Everything
up to that point is the production path: release file, task code, Cosmos.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pendulum
import pytest

from conftest import AIRFLOW_REPO, DAGS_FOLDER

SCRIPTS_DIGEST = "sha256:" + "a" * 64
DBT_DIGEST = "sha256:" + "b" * 64
REGISTRY = "europe-docker.pkg.dev/example-project/platform"
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: render-only
  cluster: {server: "https://127.0.0.1:1"}
contexts:
- name: render-only
  context: {cluster: render-only, namespace: data-platform, user: render-only}
current-context: render-only
users:
- name: render-only
  user: {}
"""


@pytest.fixture(scope="module")
def migrated() -> None:
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True)


@pytest.fixture
def kubernetes_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated: None) -> list:
    release = tmp_path / "release.yaml"
    release.write_text(
        "environment: staging\ncomponents:\n"
        f"  scripts: {{version: 1.4.0, image: scripts, digest: '{SCRIPTS_DIGEST}'}}\n"
        f"  dbt: {{version: 2.1.0, image: dbt, digest: '{DBT_DIGEST}'}}\n"
    )
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    for key, value in {
        "PLATFORM_RUNNER": "kubernetes",
        "PLATFORM_RELEASE_FILE": str(release),
        "PLATFORM_IMAGE_REGISTRY": REGISTRY,
        "PLATFORM_SOURCES": "events,partner_file",
        "KUBECONFIG": str(kubeconfig),
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("PLATFORM_SCRIPTS_CMD", "PLATFORM_DASHBOARD_CMD"):
        monkeypatch.delenv(key, raising=False)

    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    pods: list[tuple[str, Any]] = []

    def build_instead_of_send(self: KubernetesPodOperator, context: Any) -> list[dict[str, Any]]:
        pod = self.build_pod_request_obj(context)
        pods.append((self.task_id, pod))
        command = (pod.spec.containers[0].args or ["publish"])[0]
        # What the pod's CLI would have written to /airflow/xcom/return.json.
        return {
            "extract": [{"rows": 10}],
            "load": [{"rows_in": 10, "loaded": 9, "quarantined": 1}],
            "stream": [{"batches": 2, "messages": 20, "days": ["2025-03-04", "2025-03-05"]}],
            "prune": [{"source": "events", "days_pruned": [], "objects": 0}],
            "dbt": [],
        }.get(command, [{"dashboard": "/dashboard/index.html", "weeks": 1}])

    monkeypatch.setattr(KubernetesPodOperator, "execute", build_instead_of_send)
    return pods


def assert_hardened(pod: Any) -> None:
    """Non-root as the image's user, no privilege escalation, no capability: Kubernetes' "restricted"."""
    assert pod.spec.security_context.run_as_non_root is True
    assert pod.spec.security_context.run_as_user == 50000
    assert pod.spec.security_context.seccomp_profile.type == "RuntimeDefault"
    for container in pod.spec.containers:  # the task's and the XCom sidecar's
        assert container.security_context.allow_privilege_escalation is False, container.name
        assert container.security_context.capabilities.drop == ["ALL"], container.name


def _dag(file: str, dag_id: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER / file))
    assert bag.import_errors == {}
    return bag.dags[dag_id]


def test_events_ingest_tasks_are_pods_with_the_local_arguments(
    kubernetes_mode: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag = _dag("events_ingest.py", "events_ingest")
    run = dag.test(
        logical_date=pendulum.datetime(2025, 3, 5, tz="UTC"),
        run_conf={"start": "2025-03-03", "end": "2025-03-05", "days_per_task": 1},
    )
    assert run.state == "success"
    pods = kubernetes_mode
    assert sorted(task for task, _ in pods) == ["ingest.extract"] * 4 + ["ingest.load"] * 4

    # What the local runner would run for the same batches: the same arguments, another program path.
    monkeypatch.setenv("PLATFORM_SCRIPTS_CMD", "/srv/scripts-repo/.venv/bin/extract-load")
    from pipeline_runtime import commands

    expected = {
        commands.extract_source(source, day, end).argv[1:]
        for source in ("events", "partner_file")
        for day, end in (("2025-03-03", "2025-03-04"), ("2025-03-04", "2025-03-05"))
    } | {
        commands.load(source, day, end).argv[1:]
        for source in ("events", "partner_file")
        for day, end in (("2025-03-03", "2025-03-04"), ("2025-03-04", "2025-03-05"))
    }
    rendered = set()
    for _, pod in pods:
        container = pod.spec.containers[0]
        assert container.image == f"{REGISTRY}/scripts@{SCRIPTS_DIGEST}"
        assert container.command == ["extract-load"]
        rendered.add(tuple(container.args))
        # No secret value in the spec: settings and the API token come from the ConfigMap and Secret.
        assert {e.name for e in container.env} == {"RESULTS_FILE"}
        assert {s.config_map_ref.name for s in container.env_from if s.config_map_ref} == {"platform-scripts"}
        assert {s.secret_ref.name for s in container.env_from if s.secret_ref} == {"platform-scripts"}
        assert pod.metadata.labels["app.kubernetes.io/version"] == "1.4.0"
        assert_hardened(pod)
        assert container.resources.limits["memory"]
    assert rendered == expected

    # The pods' results reach XCom as they do locally: the load's counts reconcile.
    from airflow.models import XCom  # noqa: F401 (the run's XComs are read through the dag run)

    loads = [
        ti.xcom_pull(task_ids="ingest.load", map_indexes=ti.map_index)
        for ti in run.get_task_instances()
        if ti.task_id == "ingest.load"
    ]
    assert len(loads) == 4 and all(r["rows_in"] == r["loaded"] + r["quarantined"] for r in loads)


def test_dbt_transform_tasks_are_pods_of_the_dbt_image(
    kubernetes_mode: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBT_TARGET", "bigquery")  # the clusters' warehouse
    dag = _dag("dbt_transform.py", "dbt_transform")
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    dbt_tasks = [t for t in dag.tasks if t.task_id.startswith("dbt.")]
    assert dbt_tasks and all(isinstance(t, KubernetesPodOperator) for t in dbt_tasks)

    run = dag.test(logical_date=pendulum.datetime(2025, 3, 5, tz="UTC"))
    assert run.state == "success"
    pods = dict(kubernetes_mode)
    # Every task ran as a pod, the dashboard too; BigQuery needs no BI snapshot, so that task skipped.
    # The BI cache refresh is an HTTP call from the worker (no pod), skipped where no BI tool is set.
    assert set(pods) == {t.task_id for t in dag.tasks} - {"publish_warehouse_snapshot", "refresh_bi_cache"}
    assert run.get_task_instance("publish_warehouse_snapshot").state == "skipped"
    assert run.get_task_instance("refresh_bi_cache").state == "skipped"
    manifest = json.loads((AIRFLOW_REPO.parent / "dbt-repo" / "target" / "manifest.json").read_text())
    models = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    for task_id, pod in pods.items():
        container = pod.spec.containers[0]
        assert_hardened(pod)
        # No refresh has validated an image yet, so the release's digest runs.
        assert container.image == f"{REGISTRY}/dbt@{DBT_DIGEST}", task_id
        publishers = {
            "publish_dashboard": "publish-dashboard",
            "publish_docs": "publish-docs",
            "publish_data": "publish-data",
        }
        if task_id in publishers:
            # The publishers ship in the dbt image and run the build the models ran.
            assert container.command == [publishers[task_id]] and container.args == [], task_id
            continue
        args = container.args
        # dbt through the image's wrapper, which keeps run_results.json in DBT_ARTIFACTS_URL.
        assert container.command == ["dbt-keep-artifacts"], task_id
        assert args[0] == "dbt" and "--project-dir" in args, task_id
        if task_id.endswith("_model_build"):
            model = task_id.removeprefix("dbt.").removesuffix("_model_build")
            assert model in models and args[1:3] == ["build", "--select"], task_id
            assert args[3].endswith(f".{model}"), task_id
    assert pods["dbt.raw_events_source"].spec.containers[0].args[1:3] == ["source", "freshness"]


PREVIOUS_DBT_DIGEST = "sha256:" + "c" * 64


@pytest.mark.parametrize(
    ("previous", "variable", "runs"),
    [
        # Someone with Variable rights names an image of their own: the release's runs.
        (PREVIOUS_DBT_DIGEST, "ghcr.io/someone/anything:latest", DBT_DIGEST),
        # A forward promotion not yet validated here: the build it replaced keeps running.
        (PREVIOUS_DBT_DIGEST, f"{REGISTRY}/dbt@{PREVIOUS_DBT_DIGEST}", PREVIOUS_DBT_DIGEST),
        # A rollback (no previous digest): the newer build the Variable still names no longer runs.
        (None, f"{REGISTRY}/dbt@{PREVIOUS_DBT_DIGEST}", DBT_DIGEST),
    ],
    ids=["typed-in-variable", "pending-validation", "after-rollback"],
)
def test_the_dbt_image_is_always_one_the_release_names(
    kubernetes_mode: list, previous: str | None, variable: str, runs: str
) -> None:
    import os

    from airflow.models.variable import Variable

    release = Path(os.environ["PLATFORM_RELEASE_FILE"])
    extra = f", previous_digest: '{previous}'" if previous else ""
    release.write_text(
        "environment: staging\ncomponents:\n"
        f"  scripts: {{version: 1.4.0, image: scripts, digest: '{SCRIPTS_DIGEST}'}}\n"
        f"  dbt: {{version: 2.1.0, image: dbt, digest: '{DBT_DIGEST}'{extra}}}\n"
    )
    Variable.set("dbt_image", variable)
    try:
        dag = _dag("dbt_transform.py", "dbt_transform")
        run = dag.test(logical_date=pendulum.datetime(2025, 3, 5, tz="UTC"))
    finally:
        Variable.delete("dbt_image")
    assert run.state == "success"
    images = {pod.spec.containers[0].image for task_id, pod in kubernetes_mode if task_id.startswith("dbt.")}
    assert images == {f"{REGISTRY}/dbt@{runs}"}
    # The dashboard publisher ships in the dbt image: it runs the build the models ran, never another.
    (dashboard,) = [p for _, p in kubernetes_mode if p.spec.containers[0].command == ["publish-dashboard"]]
    assert dashboard.spec.containers[0].image == f"{REGISTRY}/dbt@{runs}"


def test_no_task_needs_the_metadata_db_url_on_kubernetes(
    kubernetes_mode: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The chart no longer gives any pod PLATFORM_METADATA_DB_URL: the CronJob airflow-db-clean cleans.
    monkeypatch.delenv("PLATFORM_METADATA_DB_URL", raising=False)
    monkeypatch.setenv("PLATFORM_SOURCES", "events")
    run = _dag("platform_maintenance.py", "platform_maintenance").test(
        logical_date=pendulum.datetime(2025, 3, 5, tz="UTC")
    )
    assert run.state == "success"
    (clean,) = [ti for ti in run.get_task_instances() if ti.task_id == "clean_metadata_db"]
    assert "CronJob airflow-db-clean" in clean.xcom_pull(task_ids="clean_metadata_db")["skipped"]


@contextmanager
def kubernetes_api() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """A Kubernetes API server for one running pod: answers reads and deletes, records every request."""
    seen: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _pod(self) -> None:
            seen.append((self.command, self.path.split("?")[0]))
            parts = self.path.split("?")[0].strip("/").split("/")  # api/v1/namespaces/<ns>/pods/<name>
            body = json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": parts[-1], "namespace": parts[3]},
                    "status": {"phase": "Running"},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._pod()

        def do_DELETE(self) -> None:
            self._pod()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_task_that_times_out_deletes_its_running_pod(
    kubernetes_mode: list, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    def start_and_run_on(self: KubernetesPodOperator, context: Any) -> None:
        self.pod = self.build_pod_request_obj(context)  # created: the pod now runs in the cluster
        kubernetes_mode.append((self.task_id, self.pod))
        time.sleep(60)  # and goes on running: only the task's timeout ends this

    monkeypatch.setattr(KubernetesPodOperator, "execute", start_and_run_on)
    monkeypatch.setenv("PLATFORM_SOURCES", "events")
    with kubernetes_api() as (url, seen):
        live = tmp_path / "kubeconfig-live"
        live.write_text(KUBECONFIG.replace("https://127.0.0.1:1", url))
        monkeypatch.setenv("KUBECONFIG", str(live))
        dag = _dag("platform_maintenance.py", "platform_maintenance")
        prune = dag.get_task("prune_bucket")
        prune.execution_timeout = dt.timedelta(seconds=3)
        prune.retries = 0
        started = time.monotonic()
        run = dag.test(logical_date=pendulum.datetime(2025, 3, 5, tz="UTC"))
    assert time.monotonic() - started < 50  # the timeout ended it, not the pod
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["prune_bucket"] == "failed" and run.state == "failed"
    pods = [pod for task_id, pod in kubernetes_mode if task_id == "prune_bucket"]  # one per source
    assert len(pods) == 2
    for pod in pods:
        where = f"/api/v1/namespaces/{pod.metadata.namespace}/pods/{pod.metadata.name}"
        # Asked whether it still ran, then deleted: a retry will not find a second pod on the interval.
        assert ("DELETE", where) in seen and seen.index(("GET", where)) < seen.index(("DELETE", where))


def test_what_the_dbt_refresh_returns_names_no_registry_nor_project(kubernetes_mode: list) -> None:
    # XCom is public through the viewer; the registry path names the GCP project.
    from airflow.models.variable import Variable

    Variable.delete("dbt_image")
    run = _dag("dbt_image_refresh.py", "dbt_image_refresh").test(
        logical_date=pendulum.datetime(2025, 3, 5, tz="UTC")
    )
    assert run.state == "success"
    returned = [ti.xcom_pull(task_ids=ti.task_id) for ti in run.get_task_instances()]
    assert returned and all(value is not None for value in returned)
    assert "example-project" not in json.dumps(returned) and REGISTRY not in json.dumps(returned)
    assert returned[0]["candidate"] == f"dbt@{DBT_DIGEST}"
    # The pods and the Variable still get the full reference.
    assert {pod.spec.containers[0].image for _, pod in kubernetes_mode} == {f"{REGISTRY}/dbt@{DBT_DIGEST}"}
    try:
        assert Variable.get("dbt_image") == f"{REGISTRY}/dbt@{DBT_DIGEST}"
    finally:
        Variable.delete("dbt_image")


def test_a_component_never_built_for_the_environment_is_a_clear_error(tmp_path: Path) -> None:
    from pipeline_runtime.release import ReleaseError, load_release

    release = load_release(AIRFLOW_REPO.parent / "environments" / "prod" / "release.yaml")
    assert release.environment == "prod" and set(release.components) >= {"scripts", "dbt", "airflow"}
    if release.component("scripts").digest is None:
        with pytest.raises(ReleaseError, match="never built"):
            release.image_ref("scripts", registry=REGISTRY)
    bad = tmp_path / "release.yaml"
    bad.write_text("environment: x\ncomponents:\n  scripts: {version: 1.0.0, digest: latest}\n")
    with pytest.raises(ReleaseError, match="not sha256"):
        load_release(bad)


@pytest.mark.parametrize(
    ("file", "dag_id", "expected"),
    [
        (
            "events_stream.py",
            "events_stream",
            {
                "consume": ["stream", "--source", "events_stream", "--max-messages", "200000"],
                "load": ["load", "--source", "events_stream", "--start", "2025-03-04", "--end", "2025-03-05"],
            },
        ),
        (
            "dbt_image_refresh.py",
            "dbt_image_refresh",
            {"dbt_debug": ["debug", "--connection"], "dbt_test": ["test"]},
        ),
        (
            "platform_maintenance.py",
            "platform_maintenance",
            {"prune_bucket": ["prune", "--source", "events"]},
        ),
    ],
)
def test_the_other_dags_run_their_commands_as_pods_of_pinned_images(
    kubernetes_mode: list, monkeypatch: pytest.MonkeyPatch, file: str, dag_id: str, expected: dict
) -> None:
    monkeypatch.setenv("PLATFORM_SOURCES", "events")
    dag = _dag(file, dag_id)
    run = dag.test(logical_date=pendulum.datetime(2025, 3, 5, tz="UTC"))
    assert run.state == "success"
    pods: dict[str, list] = {}
    for task_id, pod in kubernetes_mode:
        pods.setdefault(task_id, []).append(pod.spec.containers[0])
    for task_id, args in expected.items():
        containers = pods[task_id]
        assert any(c.args[: len(args)] == args for c in containers), [c.args for c in containers]
    for containers in pods.values():
        for container in containers:
            digest = DBT_DIGEST if container.image.split("@")[0].endswith("/dbt") else SCRIPTS_DIGEST
            assert container.image.endswith(f"@{digest}") and container.image.startswith(REGISTRY)
