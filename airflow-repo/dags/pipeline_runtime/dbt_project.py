"""Where the dbt project, its manifest and its dbt executable are, from configuration.

Locally they are the dbt-repo checkout and its venv; in an image they are the
paths the image baked in. The manifest is produced by `dbt parse` when the
environment or image is built, so rendering the DAG reads one JSON file and
never runs dbt.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import (
    PRODUCER_WATCHER_DONE_TASK_ID,
    PRODUCER_WATCHER_TASK_ID,
    ExecutionMode,
    InvocationMode,
    LoadMode,
    SourceRenderingBehavior,
    TestBehavior,
)

from pipeline_runtime.settings import settings

PROJECT_NAME = "platform"


def project_dir() -> Path:
    return settings().dbt_project_dir


def manifest_path() -> Path:
    return settings().manifest_path


def executable() -> str:
    return settings().command("dbt", "dbt")


def project_config() -> ProjectConfig:
    return ProjectConfig(
        # In containers the project is the image's (execution_config says where): not on this machine.
        dbt_project_path=None if settings().in_containers else project_dir(),
        manifest_path=manifest_path(),
        project_name=PROJECT_NAME,
        install_dbt_deps=False,  # no packages (docs/adr/0006)
        # Unit tests are CI's (docs/adr/0009): dbt's own setting keeps them out of every `dbt test`.
        env_vars={"DBT_EXCLUDE_RESOURCE_TYPES": "unit_test", "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"},
    )


def profile_config() -> ProfileConfig:
    """The project's own profiles.yml: every target reads its settings from the environment."""
    current = settings()
    return ProfileConfig(
        profile_name=PROJECT_NAME,
        target_name=current.dbt_target,
        profiles_yml_filepath=current.profiles_dir / "profiles.yml",
    )


def watcher() -> bool:
    """One `dbt build` for the whole project and a sensor per model (PLATFORM_DBT_EXECUTION=watcher)."""
    current = settings()
    if current.dbt_execution != "watcher":
        return False
    if current.runs_images:
        raise ValueError(
            f"PLATFORM_DBT_EXECUTION=watcher is not measured with PLATFORM_RUNNER={current.runner} yet"
        )
    return True


def wire_watcher(group: Any) -> None:
    """Start the models' sensors once the one `dbt build` has finished, whatever its outcome.

    Cosmos leaves a task group's root sensors free to start beside the build and
    wait for it (deferred, in the triggerer). A run that executes its tasks one
    at a time (`airflow dags test`: the demo, the benchmarks) may then start a
    sensor first and wait on a build that never starts; and with the
    one-slot `warehouse` pool a sensor cannot run beside the build anyway. So
    each root sensor runs after the build (`all_done`: also after a failed
    one, to report each model's own result and retry it alone), and every
    sensor finds its model's result already there.
    """
    if not watcher():
        return
    tasks = {task.task_id: task for task in group.iter_tasks()}
    producer = tasks.pop(f"{group.group_id}.{PRODUCER_WATCHER_TASK_ID}")
    tasks.pop(f"{group.group_id}.{PRODUCER_WATCHER_DONE_TASK_ID}")
    for task in tasks.values():
        if not task.upstream_task_ids.intersection(tasks):
            producer >> task
            task.trigger_rule = "all_done"


def on_kubernetes() -> bool:
    return settings().on_kubernetes


def execution_config() -> ExecutionConfig:
    if on_kubernetes():
        # Each dbt task is a pod of the dbt image, whose project sits at the same path.
        return ExecutionConfig(execution_mode=ExecutionMode.KUBERNETES)
    if settings().in_containers:
        # The same image as a container (podman, through its Docker API): the image's own project.
        return ExecutionConfig(execution_mode=ExecutionMode.DOCKER, dbt_project_path=project_dir())
    if watcher():
        return ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER,
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=executable(),
            # The one `dbt build`: a retry only restores what the first attempt reported and
            # skips (Cosmos never runs the build twice), so it comes at once, not after a backoff.
            setup_operator_args={
                "retries": 1,
                "retry_delay": dt.timedelta(0),
                "retry_exponential_backoff": False,
            },
        )
    return ExecutionConfig(
        execution_mode=ExecutionMode.LOCAL,
        invocation_mode=InvocationMode.SUBPROCESS,
        dbt_executable_path=executable(),
    )


def image_template() -> str:
    """The dbt image a pod starts, by digest, always one the release file names.

    The Variable `dbt_image` records the build `dbt_image_refresh` last
    validated here. It is honoured only when the release file names it: its
    current digest, or the one a forward promotion replaced (which keeps
    running until the new build passes its checks). Anything else, an image
    someone typed into the Variable or the build a rollback fled, is ignored
    and the release's own digest runs: editing a Variable cannot choose the
    image, and a GitOps rollback changes what runs at once.

    A template, so the Variable is read when the task runs, never while
    parsing; the release file (a local file, mounted from a ConfigMap) is read
    here.
    """
    from pipeline_runtime.release import load_release

    release = load_release()
    released = release.image_ref("dbt")
    allowed = json.dumps(release.allowed_image_refs("dbt"))
    chosen = "var.value.get('" + IMAGE_VARIABLE + "', '')"
    return "{{ " + chosen + " if " + chosen + " in " + allowed + " else '" + released + "' }}"


IMAGE_VARIABLE = "dbt_image"


def image_in_use() -> str | None:
    """At run time, the dbt image this run's models start from (`image_template`'s choice), or None locally.

    Whatever else runs from the dbt image in the same run (the dashboard
    publisher) takes the same build: a build the release pins but
    `dbt_image_refresh` has not adopted yet must not publish what the
    validated build computed.
    """
    if not settings().runs_images:
        return None
    from airflow.sdk import Variable

    from pipeline_runtime.release import load_release

    return load_release().chosen_image_ref("dbt", Variable.get(IMAGE_VARIABLE, None))


def render_config() -> RenderConfig:
    return RenderConfig(
        load_method=LoadMode.DBT_MANIFEST,
        # One `dbt build` per model: the model, then its data tests; a failing
        # test fails the task, so nothing downstream of it runs. One dbt start-up
        # per model instead of two.
        # (Watcher mode: the build runs each model's tests right after it; a sensor reports each side.)
        test_behavior=TestBehavior.AFTER_EACH if watcher() else TestBehavior.BUILD,
        # A test that reads two models (relationships) runs once both exist.
        should_detach_multiple_parents_tests=True,
        # Sources with a freshness rule become tasks that check it before anything reads them.
        source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
        invocation_mode=InvocationMode.SUBPROCESS,
        dbt_executable_path=executable(),
    )


ARTIFACTS = ("run_results.json", "sources.json")


def keep_dbt_artifacts(project_dir: str, context: Any = None, **_: Any) -> None:
    """Cosmos callback: copy the task's dbt results to `DBT_ARTIFACTS_URL/<dag>/<run>/<task>/`.

    Cosmos runs each task in a throwaway copy of the project, so without this
    every task's run_results.json vanishes with it. The URL is any Airflow
    ObjectStoragePath (`file:///...` locally, `gs://...` with the Google
    connection), so what ran is auditable after the run.
    """
    current = settings()
    destination = current.dbt_artifacts_url
    if not destination or context is None:
        return
    from airflow.sdk import ObjectStoragePath

    target = current.dbt_target_path or Path(project_dir) / "target"
    ti = context["ti"]
    folder = ObjectStoragePath(destination) / ti.dag_id / context["run_id"] / ti.task_id
    for name in ARTIFACTS:
        if (target / name).is_file():
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes((target / name).read_bytes())


def operator_args() -> dict[str, object]:
    if settings().in_containers:
        return container_operator_args()
    if not on_kubernetes():
        # Every dbt task inherits the worker's environment: warehouse, target and paths are configuration.
        return {"append_env": True, "callback": keep_dbt_artifacts}
    from pipeline_runtime.kubernetes import component_pod_args

    return {
        "image": image_template(),
        # The container runs `dbt-keep-artifacts dbt <args>`: the image's wrapper uploads the pod's
        # run_results.json to DBT_ARTIFACTS_URL before the pod goes (keep_dbt_artifacts, locally).
        "cmds": ["dbt-keep-artifacts"],
        **component_pod_args("dbt"),  # the dbt component's ConfigMap and Secret (warehouse, dataset)
    }


def container_operator_args() -> dict[str, object]:
    """Cosmos's docker operators as the pods are: the release's dbt image, its wrapper, hardened.

    Settings come from the dbt component's ConfigMap file (read with the
    release file, when the DAG is parsed); dbt needs no secret in any
    environment (BigQuery authenticates by Workload Identity). The bucket
    and warehouse folders are mounted at the same path, as for every container.
    """
    from docker.types import Mount

    from pipeline_runtime.containers import config_env
    from pipeline_runtime.kubernetes import component_labels

    current = settings()
    return {
        "image": image_template(),
        "entrypoint": ["dbt-keep-artifacts"],
        "docker_url": current.container_docker_url,
        "network_mode": "host",
        "environment": config_env("dbt"),
        "mounts": [Mount(target=folder, source=folder, type="bind") for folder in current.container_mounts],
        "mount_tmp_dir": False,
        "auto_remove": "force",
        "labels": component_labels("dbt"),
    }
