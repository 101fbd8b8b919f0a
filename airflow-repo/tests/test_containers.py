"""`PLATFORM_RUNNER=container`: the command line podman gets is the pod spec, as flags.

The container runner's real runs (the pinned images, started by podman) are
in the repository's tests/test_images.py, where the images are built; these
check what it asks podman for, which needs no image.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SCRIPTS_DIGEST = "sha256:" + "a" * 64
DBT_DIGEST = "sha256:" + "b" * 64


@pytest.fixture
def container_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    release = tmp_path / "release.yaml"
    release.write_text(
        "environment: sandbox\ncomponents:\n"
        f"  scripts: {{version: 1.4.0-main.7, image: scripts, digest: '{SCRIPTS_DIGEST}'}}\n"
        f"  dbt: {{version: 2.1.0, image: dbt, digest: '{DBT_DIGEST}'}}\n"
    )
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    (env_dir / "platform-scripts.env").write_text("BUCKET_URL=/srv/data/bucket\n")
    (env_dir / "platform-scripts.secret.env").write_text("EVENTS_API_TOKEN=from-the-secret\n")
    for key, value in {
        "PLATFORM_RUNNER": "container",
        "PLATFORM_RELEASE_FILE": str(release),
        "PLATFORM_IMAGE_REGISTRY": "127.0.0.1:5000",
        "PLATFORM_CONTAINER_ENV_DIR": str(env_dir),
        "PLATFORM_CONTAINER_MOUNTS": "/srv/data,/srv/warehouse",
        "PLATFORM_CONTAINER_TLS_VERIFY": "false",
        "PLATFORM_SCRIPTS_CMD": "/srv/scripts-repo/.venv/bin/extract-load",
    }.items():
        monkeypatch.setenv(key, value)
    return env_dir


def test_a_command_runs_in_its_pinned_image_with_the_pods_arguments(container_mode: Path) -> None:
    from pipeline_runtime import commands, containers

    command = commands.load("events", "2025-03-03", "2025-03-04")
    argv = containers.podman_argv(command, "platform-scripts-x")
    image = "127.0.0.1:5000/scripts@" + SCRIPTS_DIGEST
    # The program is the image's (not the venv path the local runner uses), the arguments the same.
    assert argv[-len(command.in_image) - 1 :] == ["extract-load", image, *command.in_image[1:]]
    assert argv[argv.index("--entrypoint") + 1] == "extract-load"
    assert argv[:3] == [argv[0], "run", "--rm"] and argv[argv.index("--name") + 1] == "platform-scripts-x"
    # ConfigMap then Secret, as files; the folders at the same path; hardened like the pods.
    files = [argv[i + 1] for i, a in enumerate(argv) if a == "--env-file"]
    assert files == [str(container_mode / f"platform-scripts{suffix}") for suffix in (".env", ".secret.env")]
    volumes = [argv[i + 1] for i, a in enumerate(argv) if a == "--volume"]
    assert volumes == ["/srv/data:/srv/data", "/srv/warehouse:/srv/warehouse"]
    assert "--tls-verify=false" in argv and "no-new-privileges" in argv and "ALL" in argv
    assert "app.kubernetes.io/version=1.4.0-main.7" in argv


def test_a_secret_set_on_a_command_reaches_the_container_by_name_only(container_mode: Path) -> None:
    from pipeline_runtime import containers
    from pipeline_runtime.commands import Command

    command = Command(
        "scripts",
        ("extract-load", "extract", "--source", "events"),
        env={"EVENTS_API_TOKEN": "s3cr3t-value", "LOG_LEVEL": "DEBUG"},
        secret_env=frozenset({"EVENTS_API_TOKEN"}),
    )
    argv = containers.podman_argv(command, "n")
    assert not any("s3cr3t-value" in a for a in argv)
    assert "EVENTS_API_TOKEN" in argv and "LOG_LEVEL=DEBUG" in argv


def test_the_dashboard_runs_in_the_dbt_image(container_mode: Path) -> None:
    from pipeline_runtime import commands, containers

    argv = containers.podman_argv(commands.publish_dashboard(), "n")
    assert argv[-1] == "127.0.0.1:5000/dbt@" + DBT_DIGEST
    assert argv[argv.index("--entrypoint") + 1] == "publish-dashboard"
    assert "--env-file" not in argv  # no platform-dbt files in this environment


def test_container_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline_runtime.settings import settings

    assert settings({"PLATFORM_RUNNER": "container"}).in_containers
    assert settings({"PLATFORM_RUNNER": "container"}).container_tls_verify is True
    with pytest.raises(ValueError, match="PLATFORM_CONTAINER_TLS_VERIFY"):
        settings({"PLATFORM_CONTAINER_TLS_VERIFY": "sometimes"})


def test_dbt_transform_runs_each_model_in_a_container_of_the_release_dbt_image(
    container_mode: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import BundleDagBag
    from cosmos.operators.docker import DbtDockerBaseOperator

    from conftest import AIRFLOW_REPO, DAGS_FOLDER

    (container_mode / "platform-dbt.env").write_text("DBT_DUCKDB_PATH=/srv/data/warehouse.duckdb\n")
    (container_mode / "platform-dbt.secret.env").write_text("NEVER_IN_A_DAG=secret-value\n")
    monkeypatch.setenv("PLATFORM_CONTAINER_DOCKER_URL", "unix:///run/test/podman.sock")
    monkeypatch.setenv("DBT_PROJECT_DIR", "/opt/dbt")  # the image's project, absent here
    monkeypatch.setenv(
        "DBT_MANIFEST_PATH", str(AIRFLOW_REPO.parent / "dbt-repo" / "target" / "manifest.json")
    )
    bag = BundleDagBag(dag_folder=str(DAGS_FOLDER / "dbt_transform.py"), bundle_path=DAGS_FOLDER)
    assert bag.import_errors == {}
    dbt_tasks = [t for t in bag.dags["dbt_transform"].tasks if t.task_id.startswith("dbt.")]
    assert dbt_tasks and all(isinstance(t, DbtDockerBaseOperator) for t in dbt_tasks)
    for task in dbt_tasks:
        # Only an image the release names can run (the Variable is honoured only when it is one of them).
        assert f"127.0.0.1:5000/dbt@{DBT_DIGEST}" in task.image
        assert task.entrypoint == ["dbt-keep-artifacts"] and task.network_mode == "host"
        assert task.docker_url == "unix:///run/test/podman.sock"
        assert task.environment == {"DBT_DUCKDB_PATH": "/srv/data/warehouse.duckdb"}
        assert [m["Target"] for m in task.mounts] == ["/srv/data", "/srv/warehouse"]
        assert str(task.project_dir) == "/opt/dbt"
