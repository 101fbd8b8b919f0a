"""The GitOps walk, end to end, against a real registry: an environment runs only what git pins.

One test, in the order a release happens: the images are built and pushed
to Debian's `docker-registry` and promoted to sandbox (what sandbox.yaml does
after a merge, `make release-local` here, in a scratch clone); `make up
ENV=sandbox` starts the local stack from what sandbox pins, and its scheduler
runs `events_ingest` and `dbt_transform` over the demo period with every
command in a container pulled from that registry by the pinned digest, each
container's environment rendered from the platform chart for sandbox; release
tags take the same builds to staging (rc) and prod (final: no rebuild, the
same digest); a new dbt build that breaks a data test reaches sandbox and
`dbt_image_refresh` refuses it on the data the sandbox wrote, while the
dashboard keeps the validated build; a rollback puts the previous digest back
and the next run uses it. Every container of the platform that ran is checked
against the pins.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
import yaml
from containers import (
    COMPONENTS,
    PodmanService,
    StartedContainers,
    build_images,
    image_file,
    load_tool,
    podman,
    podman_env,
    pyproject_version,
    shared_dir,
)
from test_production_dags import AIRFLOW, dags_test, environment_in, variable
from test_public_viewer import POSTGRES, STACK, request, wait_until_settled

pytestmark = pytest.mark.e2e  # runs the pipeline: DAG runs, the stack, containers

ROOT = Path(__file__).resolve().parents[1]
# The sandbox stack's demo period: local days, each its own extract and load container.
DEMO_DAYS = 2
# The logical date of the walk's own runs (the refresh and the publisher do not read it).
LOGICAL_DATE = "2025-03-05"
# A data test the new build adds, which today's data fails: a build that must not be adopted.
BROKEN_TEST = "-- every event is in the future (it is not)\nselect * from {{ ref('fct_events') }}\n"


def pinned(clone: Path, environment: str) -> dict[str, dict[str, Any]]:
    path = clone / "environments" / environment / "release.yaml"
    return dict(yaml.safe_load(path.read_text())["components"])


def env_file(path: Path) -> dict[str, str]:
    """A podman env file as a mapping."""
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def container_settings(
    state: Path, env: dict[str, str], clone: Path, address: str, api: str
) -> dict[str, str]:
    """The container runner's configuration for sandbox: git's release file, the registry, the ConfigMaps.

    Each component's settings are its ConfigMap as the platform chart renders it for sandbox
    (with the local layer: DuckDB, loopback, this run's folders); what production keeps in the
    Secret comes from a 0600 file, never a command line.
    """
    env_dir = state / "configmaps"
    written = load_tool("container_env").render_local(
        "sandbox",
        env_dir,
        environments=clone / "environments",
        duckdb_path=env["DBT_DUCKDB_PATH"],
        dashboard_dir=state / "dashboard",
        artifacts_url=env["DBT_ARTIFACTS_URL"],
        source=env,
    )
    assert env_file(written["platform-dbt.env"])["DBT_BIGQUERY_DATASET"] == "analytics_sandbox"
    assert written["platform-scripts.secret.env"].stat().st_mode & 0o077 == 0
    for folder in ("bucket", "dbt-artifacts", "dashboard"):
        shared_dir(state / folder)
    return {
        "PLATFORM_RUNNER": "container",
        "PLATFORM_ENVIRONMENT": "sandbox",
        "PLATFORM_ENVIRONMENTS_DIR": str(clone / "environments"),
        "PLATFORM_IMAGE_REGISTRY": address,
        "PLATFORM_CONTAINER_TLS_VERIFY": "false",  # the registry on 127.0.0.1 speaks plain HTTP
        "PLATFORM_CONTAINER_ENV_DIR": str(env_dir),
        "PLATFORM_CONTAINER_MOUNTS": str(state),
        "PLATFORM_CONTAINER_DOCKER_URL": api,
        # The project inside the dbt image; Airflow renders it from the manifest its own image carries.
        "DBT_PROJECT_DIR": "/opt/dbt",
    }


def ran_at(started: StartedContainers, digests: dict[str, str]) -> list[str]:
    """Which of `digests` (name -> digest) each started container ran; '?' for any other image."""
    found = []
    for known in started.digests():
        names = [name for name, digest in digests.items() if digest in known]
        found.append(names[0] if names else "?")
    return found


def refresh_failed(env: dict[str, str], logical_date: str) -> str:
    """Run dbt_image_refresh where a check must fail; its output."""
    result = subprocess.run(
        [AIRFLOW, "dags", "test", "dbt_image_refresh", logical_date],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    ended = {
        line.split("task_id=")[1].split()[0]
        for line in result.stdout.splitlines()
        if "[DAG TEST] end task" in line and "task_id=" in line
    }
    assert "task failed" in result.stdout and "dbt_test" in result.stdout, result.stdout[-4000:]
    assert "record" not in ended, result.stdout[-4000:]
    return result.stdout


def publish_dashboard(env: dict[str, str], state: Path, logical_date: str) -> None:
    """One run of dbt_transform's last task, as the scheduler would start it next."""
    page = state / "dashboard" / "index.html"
    page.unlink(missing_ok=True)
    result = subprocess.run(
        [AIRFLOW, "tasks", "test", "dbt_transform", "publish_dashboard", logical_date],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0 and page.is_file(), (result.stdout + result.stderr)[-4000:]


def broken_dbt_context(folder: Path) -> Path:
    """A change to dbt-repo under review: the same project with one more data test."""
    context = folder / "dbt-repo"
    shutil.copytree(
        ROOT / "dbt-repo",
        context,
        ignore=shutil.ignore_patterns(".venv", "target", "logs", "dbt_packages", "*.duckdb*", "__pycache__"),
    )
    (context / "tests" / "assert_events_are_in_the_future.sql").write_text(BROKEN_TEST)
    return context


def test_a_release_walks_from_build_to_prod_and_back_by_digest_only(tmp_path: Path) -> None:
    release_local = load_tool("release_local")
    images = release_local.images
    built = build_images()
    environments_here = {p: p.read_bytes() for p in (ROOT / "environments").rglob("*") if p.is_file()}
    workdir = tmp_path / "release"
    port = release_local.free_port()
    address = f"127.0.0.1:{port}"
    # The registry is plain HTTP on 127.0.0.1; podman (its CLI and its API service) may pull from it.
    registries = tmp_path / "registries.conf"
    registries.write_text(f'[[registry]]\nlocation = "{address}"\ninsecure = true\n')
    env_podman = podman_env(CONTAINERS_REGISTRIES_CONF=str(registries))

    # 1. After a merge (sandbox.yaml, `make release-local`): push each image, pin the registry's
    # digest, promote to sandbox, in a scratch clone.
    with release_local.registry(workdir / "registry", port):
        released = release_local.release(workdir, address)
        clone, head = Path(released["clone"]), released["source_commit"]
        sandbox = pinned(clone, "sandbox")
        versions = {c: pyproject_version(c) for c in COMPONENTS}
        for component in COMPONENTS:
            assert sandbox[component]["version"] == f"{versions[component]}-main.1"
            assert sandbox[component]["digest"] == release_local.registry_digest(
                address, component, f"{versions[component]}-main.1"
            )

    # 2. `make up ENV=sandbox`: the stack runs the demo period from what sandbox pins, the same
    # registry storage served again by the stack.
    state = tmp_path / "stack"
    sandbox_stack_runs(release_local.free_port, built, workdir, port, sandbox, state)

    # 3.-5. Release tags, a refused build and a rollback, on the data the sandbox wrote.
    os.environ["CONTAINERS_REGISTRIES_CONF"] = str(registries)
    try:
        with (
            release_local.registry(workdir / "registry", port),
            PodmanService(tmp_path / "podman-api", env=env_podman) as api,
        ):
            walk(
                release_local, images, built, clone, head, address, api, state / "data", env_podman, tmp_path
            )
    finally:
        os.environ.pop("CONTAINERS_REGISTRIES_CONF", None)
    # Every promotion was made in the scratch clone: this checkout's environments/ never change.
    assert environments_here == {p: p.read_bytes() for p in (ROOT / "environments").rglob("*") if p.is_file()}


def sandbox_stack_runs(
    free_port: Callable[[], int],
    built: dict[str, dict[str, Any]],
    workdir: Path,
    registry_port: int,
    sandbox: dict[str, Any],
    state: Path,
) -> None:
    """`make up ENV=sandbox` after the release: its scheduler runs the demo period, every task in a
    container of a pinned image, each container's settings the platform chart's for sandbox."""
    database = f"airflow_sandbox_{os.urandom(4).hex()}"
    with psycopg.connect(POSTGRES, autocommit=True) as con:
        con.execute(f'create database "{database}"')
    base_url = POSTGRES.rsplit("/", 1)[0].removeprefix("postgresql://")
    names = ("", "_VIEWER", "_ADMIN", "_LOG", "_TRIGGER_LOG", "_BI", "_BI_VIEWER", "_BI_ADMIN")
    ports = {name: str(free_port()) for name in names}
    env = {
        **podman_env(),
        **{f"STACK{name}_PORT": port for name, port in ports.items()},
        "STACK_DIR": str(state),
        "STACK_ENV": "sandbox",
        "STACK_RELEASE_DIR": str(workdir),
        "STACK_REGISTRY_PORT": str(registry_port),
        "STACK_EVENTS_API_PORT": str(free_port()),
        "STACK_DEMO_DAYS": str(DEMO_DAYS),
        "STACK_DEMO_EVENTS": "400",
        "STACK_POSTGRES_URL": POSTGRES,
        "STACK_DB_NAME": database,
        "AIRFLOW__CORE__PARALLELISM": "2",
        # Superset as sandbox pins it: the bi image by digest (tools/superset.sh).
        "STACK_BI": "1",
    }
    pgid = None
    try:
        with StartedContainers(built["scripts"]["ref"]) as started:
            up = subprocess.run([STACK, "up"], env=env, capture_output=True, text=True, timeout=600)
            assert up.returncode == 0, up.stdout + up.stderr
            pgid = int((state / "stack.pgid").read_text())
            for component in COMPONENTS:
                assert sandbox[component]["digest"] in up.stdout  # what it says it runs
            # The post-deploy smoke check (a cluster's PostSync hook) passed, with the pinned dbt image's
            # `dbt debug` and `dbt parse` among its checks.
            assert "smoke check: all" in up.stdout, up.stdout
            smoke = (state / "logs" / "smoke-check.log").read_text()
            for verb in ("debug", "parse"):
                assert f"ok   dbt {verb}: passes in " in smoke and sandbox["dbt"]["digest"] in smoke, smoke
            runs = wait_until_settled(f"postgresql://{base_url}/{database}", deadline=time.monotonic() + 1500)
        assert ("events_ingest", "manual", "success") in runs, runs
        assert {run_state for _, _, run_state in runs} == {"success"}, runs
        # Every container of the platform ran a pinned image, pulled by digest; Superset's is bi's.
        pinned_digests = {c: sandbox[c]["digest"] for c in ("scripts", "dbt", "bi")}
        ran = ran_at(started, pinned_digests)
        assert "?" not in ran, list(zip(started.images, ran, strict=True))
        assert ran.count("bi") == 1, ran
        # An extract and a load of each day; each model, the freshness check and the dashboard.
        assert ran.count("scripts") >= 2 * DEMO_DAYS and ran.count("dbt") > 10, ran
        # Their settings: the chart's ConfigMaps for sandbox; the Secret's values only in a 0600 file.
        configmaps = state / "configmaps"
        assert env_file(configmaps / "platform-dbt.env")["DBT_BIGQUERY_DATASET"] == "analytics_sandbox"
        secret = configmaps / "platform-scripts.secret.env"
        assert secret.stat().st_mode & 0o077 == 0 and "EVENTS_API_URL=" in secret.read_text()
        # The data the containers wrote: each day landed with its manifest, loaded, modelled; the viewer
        # serves the dashboard they published.
        data = state / "data"
        with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
            raw = con.execute("select count(*) from raw.events").fetchone()[0]
            assert raw > 0 and con.execute("select count(*) from core.fct_events").fetchone()[0] == raw
        manifests = sorted((data / "bucket" / "raw" / "events").glob("dt=*/_manifest.json"))
        assert len(manifests) == DEMO_DAYS
        assert sum(json.loads(m.read_text())["row_count"] for m in manifests) == raw
        # BI tools' snapshot, published by the pinned dbt image's `warehouse-snapshot`.
        with duckdb.connect(str(data / "warehouse-readers.duckdb"), read_only=True) as con:
            assert con.execute("select count(*) from analytics.user_activity_daily").fetchone()[0] > 0
        page = request(f"https://127.0.0.1:{ports['_VIEWER']}", "/dashboard/")
        assert page.status == 200 and b"User Activity" in page.body
        # Superset from the pinned image, behind the stack's nginx: its deploy job imported the image's
        # own dashboard, which the public reads.
        assert (
            f"the pinned bi image 127.0.0.1:{registry_port}/bi@{sandbox['bi']['digest']}"
            in (state / "logs" / "superset.log").read_text()
        )
        shown = request(f"https://127.0.0.1:{ports['_BI_VIEWER']}", "/api/v1/dashboard/user-activity")
        assert shown.status == 200 and json.loads(shown.body)["result"]["dashboard_title"] == (
            "User Activity & Attrition"
        )
    finally:
        down = subprocess.run([STACK, "down"], env=env, capture_output=True, text=True, timeout=120)
        with psycopg.connect(POSTGRES, autocommit=True) as con:
            con.execute(f'drop database if exists "{database}" with (force)')
    assert down.returncode == 0, down.stdout + down.stderr
    if pgid is not None:
        with pytest.raises(ProcessLookupError):
            os.killpg(pgid, 0)  # the whole group is gone
    left = podman("ps", "--all", "--quiet", "--filter", "label=app.kubernetes.io/part-of=data-platform")
    assert left.split() == []


def walk(
    release_local: Any,
    images: Any,
    built: dict[str, dict[str, Any]],
    clone: Path,
    head: str,
    address: str,
    api: PodmanService,
    state: Path,
    env_podman: dict[str, str],
    scratch: Path,
) -> None:
    sandbox = pinned(clone, "sandbox")
    versions = {c: pyproject_version(c) for c in COMPONENTS}
    good = sandbox["dbt"]["digest"]
    refs = {c: f"{address}/{c}@{sandbox[c]['digest']}" for c in COMPONENTS}
    # The sandbox's data, with Airflow's CLI: each command a container of the pinned image.
    with environment_in(state) as env:
        env.update(container_settings(state, env, clone, address, api.url))
        env["CONTAINERS_REGISTRIES_CONF"] = env_podman["CONTAINERS_REGISTRIES_CONF"]
        env["CONTAINERS_CONF"] = env_podman["CONTAINERS_CONF"]
        # The Airflow image carries the manifest of the dbt image it was built from, by digest.
        manifest = image_file(
            refs["airflow"], "/opt/dbt/target/manifest.json", state / "manifest.json", env_podman
        )
        dbt_manifest = image_file(
            refs["dbt"], "/opt/dbt/target/manifest.json", state / "dbt.json", env_podman
        )
        assert manifest.read_bytes() == dbt_manifest.read_bytes()
        env["DBT_MANIFEST_PATH"] = str(manifest)
        # The refresh validates the pinned build on the sandbox's data and records it for dbt_transform.
        with StartedContainers(built["scripts"]["ref"]) as started:
            dags_test(env, "dbt_image_refresh", logical_date=LOGICAL_DATE)
        assert set(ran_at(started, {"dbt": good})) == {"dbt"}
        assert variable(env, "dbt_image") == refs["dbt"]

        # 3. Release tags (release.yaml): an rc is pushed to staging; its final goes to prod, unrebuilt.
        for component in COMPONENTS:
            release_local.release_tag(clone, address, f"{component}/v{versions[component]}-rc.1", head)
        staging = pinned(clone, "staging")
        for component in COMPONENTS:
            rc = f"{versions[component]}-rc.1"
            assert staging[component]["version"] == rc
            assert staging[component]["digest"] == release_local.registry_digest(address, component, rc)
        for component in COMPONENTS:
            release_local.release_tag(clone, address, f"{component}/v{versions[component]}", head)
        prod = pinned(clone, "prod")
        for component in COMPONENTS:
            assert prod[component] == {
                "version": versions[component],
                "image": component,
                "digest": staging[component]["digest"],  # the very build staging ran
            }
            with pytest.raises(urllib.error.HTTPError):  # nothing was pushed for the final version
                release_local.registry_digest(address, component, versions[component])
        airflow_values = yaml.safe_load((clone / "environments" / "prod" / "airflow-image.yaml").read_text())
        assert airflow_values["images"]["airflow"]["digest"] == prod["airflow"]["digest"]
        # The official Superset chart's image, written with it: the very digest, the version a label.
        bi_values = yaml.safe_load((clone / "environments" / "prod" / "bi-image.yaml").read_text())
        assert bi_values["image"]["tag"] == f"{versions['bi']}@{prod['bi']['digest']}"

        # 4. A new dbt build that fails a data test reaches sandbox: the refresh refuses it.
        broken_image = images.build(
            "dbt", tag="localhost/platform/dbt:under-review", context=broken_dbt_context(scratch)
        ).ref
        number = release_local.run_number(clone)
        change = f"{versions['dbt']}-main.{number}"
        broken = release_local.push_and_record(clone, address, "dbt", change, head, broken_image)["digest"]
        release_local.promote(
            clone, "promote", "--component", "dbt", "--version", change, "--to", "sandbox", "--commit"
        )
        assert pinned(clone, "sandbox")["dbt"] == {
            "version": change,
            "image": "dbt",
            "digest": broken,
            "previous_digest": good,
        }
        with StartedContainers(built["scripts"]["ref"]) as refusing:
            refresh_failed(env, "2025-03-06")
            publish_dashboard(env, state, LOGICAL_DATE)
        assert variable(env, "dbt_image") == refs["dbt"]  # the validated build stays in use
        ran = ran_at(refusing, {"good": good, "broken": broken})
        # debug, parse and test (twice: one retry) ran the candidate; the dashboard ran the validated build.
        assert ran.count("broken") >= 3 and ran[-1] == "good", ran

        # 5. Rollback: git puts the previous digest back, and the next run uses it.
        release_local.promote(clone, "rollback", "--component", "dbt", "--env", "sandbox", "--commit")
        assert pinned(clone, "sandbox")["dbt"] == {
            "version": f"{versions['dbt']}-main.1",
            "image": "dbt",
            "digest": good,
        }
        with StartedContainers(built["scripts"]["ref"]) as after:
            dags_test(env, "dbt_image_refresh", logical_date="2025-03-07")
            publish_dashboard(env, state, LOGICAL_DATE)
        assert set(ran_at(after, {"good": good, "broken": broken})) == {"good"}
        assert variable(env, "dbt_image") == refs["dbt"]
    # No container of the platform outlives its task.
    left = podman("ps", "--all", "--quiet", "--filter", "label=app.kubernetes.io/part-of=data-platform")
    assert left.split() == []
    walked = subprocess.run(
        ["git", "diff", head, "HEAD", "--", "environments/"],
        cwd=clone,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (Path(os.environ.get("TEST_ARTIFACTS_DIR", scratch)) / "gitops-walk-release.diff").write_text(walked)
