"""The three images, built from the committed Dockerfiles, tested as images.

`tools/images.py build` builds them (once per session: a second build is the
layer cache's), then each test runs them with testcontainers over podman's
Docker API: the extract & load image extracts from a real HTTP API and loads
DuckDB on a mounted volume, the dbt image builds that warehouse and publishes
the dashboard, and the Airflow image loads every DAG in Kubernetes mode and
renders each task's pod. Each image also has to say its version, run as a
non-root user and carry no environment, build output or secret of the
machine that built it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dbt-repo" / "python_tests"))
from containers import (
    COMPONENTS,
    PodmanService,
    build_images,
    inspect,
    podman,
    pyproject_version,
    run_container,
    shared_dir,
)
from publication_checks import check_publication

pytestmark = pytest.mark.e2e  # runs the pipeline: DAG runs, the stack, containers

ROOT = Path(__file__).resolve().parents[1]
IMAGES = COMPONENTS  # scripts, dbt, Airflow and bi (Superset with the dashboards as code)
SCRIPTS = ROOT / "scripts-repo" / ".venv" / "bin" / "extract-load"
REGISTRY = "registry.invalid/platform"


@pytest.fixture(scope="module")
def images() -> dict[str, dict[str, Any]]:
    return build_images()


@pytest.fixture(scope="module")
def podman_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodmanService]:
    with PodmanService(tmp_path_factory.mktemp("podman")) as service:
        yield service


@pytest.mark.parametrize("component", IMAGES)
def test_each_image_runs_as_non_root_and_carries_its_release_version(
    component: str, images: dict[str, dict[str, Any]], podman_api: PodmanService
) -> None:
    ref = images[component]["ref"]
    config = inspect(ref)["Config"]
    assert config["User"] == "50000"
    assert config["Labels"]["org.opencontainers.image.version"] == pyproject_version(component)
    probe = {
        "scripts": (["--version"], None),
        "dbt": (["publish-dashboard", "--version"], None),
        "airflow": (["python", "-c", "import airflow; print(airflow.__version__)"], None),
        "bi": (["-c", "import importlib.metadata as m; print(m.version('platform-bi'))"], "python"),
    }[component]
    code, out, err = run_container(podman_api, ref, probe[0], entrypoint=probe[1])
    assert code == 0, err
    expected = "3.3.2" if component == "airflow" else pyproject_version(component)
    assert expected in out
    code, uid, err = run_container(
        podman_api, ref, ["-c", "import os; print(os.getuid())"], entrypoint="python"
    )
    assert (code, uid.strip()) == (0, "50000"), err


# A build leftover or a secret, by file name; the image's own parsed manifest
# (/opt/dbt/target, written by `dbt parse` inside the build) is what it ships.
FORBIDDEN = re.compile(
    r"(^|/)(\.venv|\.git|\.env|\.pytest_cache|\.mypy_cache|logs|dbt_packages|\.demo|\.data)(/|$)"
    r"|\.duckdb$|\.duckdb\.wal$|\.pem$|\.key$|id_rsa|credentials\.json$|kubeconfig$"
)
APP_DIRS = (
    "/opt/dbt",
    "/opt/airflow",
    "/opt/venv/lib/python3.11/site-packages/extract_load",
    "/opt/venv/lib/python3.11/site-packages/dashboard",
    "/opt/venv/lib/python3.11/site-packages/data_health",
    "/opt/venv/lib/python3.11/site-packages/warehouses",
    "/opt/venv/lib/python3.11/site-packages/bi",
    "/opt/bi",
)
LISTING = """
import os, sys
for top in sys.argv[1:]:
    for base, dirs, files in os.walk(top):
        for name in dirs + files:
            print(os.path.join(base, name))
"""


@pytest.mark.parametrize("component", IMAGES)
def test_no_image_carries_the_builders_environment_or_a_secret(
    component: str, images: dict[str, dict[str, Any]], podman_api: PodmanService
) -> None:
    ref = images[component]["ref"]
    history = podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", ref)
    # The build stage's CA bundle argument and any credential stay out of the final image's history.
    assert "SSL_CERT_FILE" not in history
    assert not re.search(r"(?i)(password|secret|token|api[_-]?key)=\S", history)

    code, listing, err = run_container(podman_api, ref, ["-c", LISTING, *APP_DIRS], entrypoint="python")
    assert code == 0, err
    paths = listing.split()
    assert paths, "the listing found none of the application folders"
    leftovers = [p for p in paths if FORBIDDEN.search(p)]
    assert leftovers == []
    if component == "dbt":
        target = {p.removeprefix("/opt/dbt/target/") for p in paths if p.startswith("/opt/dbt/target/")}
        # What `dbt parse` writes; a host's run (compiled SQL, run results) would add more.
        assert "manifest.json" in target and not {"run_results.json", "compiled", "run"} & target


@pytest.fixture(scope="module")
def events_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, dt.date, dt.date]]:
    """The events API on the host (real HTTP), serving a small generated stream."""
    folder = tmp_path_factory.mktemp("events-api")
    source = folder / "events.parquet"
    subprocess.run(
        [
            SCRIPTS,
            "generate",
            "--out",
            source,
            "--start",
            "2025-03-03",
            "--days",
            "4",
            "--events",
            "600",
            "--seed",
            "3",
        ],
        check=True,
        capture_output=True,
    )
    url_file = folder / "api.url"
    server = subprocess.Popen(
        [SCRIPTS, "serve-api", "--source", source, "--url-file", url_file],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(240):
            if url_file.exists() and url_file.read_text().strip():
                break
            assert server.poll() is None, "serve-api exited"
            subprocess.run(["sleep", "0.25"], check=True)
        url = url_file.read_text().strip()
        with urllib.request.urlopen(f"{url}/healthz", timeout=30) as response:
            health = json.load(response)
        first = dt.date.fromisoformat(health["first_event_time"][:10])
        last = dt.date.fromisoformat(health["last_event_time"][:10])
        yield url, int(health["rows"]), first, last + dt.timedelta(days=1)
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def loaded(
    images: dict[str, dict[str, Any]],
    podman_api: PodmanService,
    events_api: tuple[str, int, dt.date, dt.date],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, int]:
    """The extract & load image's extract and load of every served day, on a mounted volume."""
    url, rows, start, end = events_api
    data = shared_dir(tmp_path_factory.mktemp("volume") / "data")
    interval = ["--start", start.isoformat(), "--end", end.isoformat()]
    ref = images["scripts"]["ref"]
    volumes = {data: "/data"}
    code, _, err = run_container(
        podman_api,
        ref,
        ["extract", "--source", "events", *interval, "--api-url", url, "--bucket", "/data/bucket"],
        volumes=volumes,
        network_host=True,
    )
    assert code == 0, err[-3000:]
    code, _, err = run_container(
        podman_api,
        ref,
        [
            "load",
            "--source",
            "events",
            *interval,
            "--bucket",
            "/data/bucket",
            "--warehouse",
            "duckdb:////data/warehouse.duckdb",
        ],
        volumes=volumes,
    )
    assert code == 0, err[-3000:]
    return data, rows


def test_the_extract_load_image_lands_and_loads_every_served_event(loaded: tuple[Path, int]) -> None:
    data, served = loaded
    manifests = sorted((data / "bucket" / "raw" / "events").glob("dt=*/_manifest.json"))
    assert manifests and sum(json.loads(m.read_text())["row_count"] for m in manifests) == served
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from raw.events").fetchone()[0] == served


# As the pipeline's pods run dbt: unit tests run in CI, not against the warehouse.
DBT_ENV = {"DBT_DUCKDB_PATH": "/data/warehouse.duckdb", "DBT_EXCLUDE_RESOURCE_TYPES": "unit_test"}


@pytest.fixture(scope="module")
def modelled(
    images: dict[str, dict[str, Any]], podman_api: PodmanService, loaded: tuple[Path, int]
) -> tuple[Path, int, str]:
    """The dbt image's `dbt build` of the loaded warehouse: (volume, events served, dbt's output)."""
    data, served = loaded
    code, out, err = run_container(
        podman_api,
        images["dbt"]["ref"],
        ["dbt", "build", "--target-path", "/tmp/target", "--log-path", "/tmp/logs"],
        volumes={data: "/data"},
        environment=DBT_ENV,
    )
    assert code == 0, (out + err)[-4000:]
    return data, served, out


def test_the_dbt_image_builds_that_warehouse_and_publishes_the_dashboard(
    images: dict[str, dict[str, Any]], podman_api: PodmanService, modelled: tuple[Path, int, str]
) -> None:
    data, served, out = modelled
    ref = images["dbt"]["ref"]
    assert re.search(r"Done\. PASS=\d+ WARN=\d+ ERROR=0 SKIP=0", out), out[-2000:]
    code, out, err = run_container(
        podman_api,
        ref,
        ["publish-dashboard", "--out-dir", "/data/dashboard"],
        volumes={data: "/data"},
        environment=DBT_ENV,
    )
    assert code == 0, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["weeks"] >= 1
    assert "<html" in (data / "dashboard" / "index.html").read_text().lower()
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from core.fct_events").fetchone()[0] == served


def test_the_dbt_image_publishes_the_docs_and_the_public_data(
    images: dict[str, dict[str, Any]], podman_api: PodmanService, modelled: tuple[Path, int, str]
) -> None:
    """Issue 27: the image's publish-docs and publish-data, as pods run them, on the warehouse it built."""
    data, _, _ = modelled
    for argv in (
        ["publish-docs", "--to", "/data/docs"],
        ["publish-data", "--to", "/data/data", "--docs", "/data/docs"],
    ):
        code, out, err = run_container(
            podman_api, images["dbt"]["ref"], argv, volumes={data: "/data"}, environment=DBT_ENV
        )
        assert code == 0, (out + err)[-3000:]
    assert '<script src="assets/' in (data / "docs" / "index.html").read_text()  # scripts are files
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        catalog = check_publication(lambda path: (data / "data" / "v1" / path).read_bytes(), con)
    assert len(catalog["datasets"]) >= 8


def test_the_airflow_image_loads_every_dag_and_renders_each_task_as_a_pinned_pod(
    images: dict[str, dict[str, Any]], podman_api: PodmanService, tmp_path: Path
) -> None:
    digests = {c: inspect(images[c]["ref"])["Digest"] for c in ("scripts", "dbt")}
    probe = shared_dir(tmp_path / "probe")
    (probe / "release.yaml").write_text(
        "environment: sandbox\ncomponents:\n"
        + "".join(
            f"  {c}: {{version: {pyproject_version(c)}, image: {c}, digest: '{d}'}}\n"
            for c, d in digests.items()
        )
    )
    (probe / "kubeconfig").write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: none\n  cluster: {server: 'https://127.0.0.1:1'}\n"
        "contexts:\n- name: none\n  context: {cluster: none, namespace: data-platform, user: none}\n"
        "current-context: none\nusers:\n- name: none\n  user: {}\n"
    )
    (probe / "probe.py").write_text((ROOT / "tests" / "images" / "airflow_render_probe.py").read_text())
    env = {
        "PLATFORM_RUNNER": "kubernetes",
        "PLATFORM_RELEASE_FILE": "/probe/release.yaml",
        "PLATFORM_IMAGE_REGISTRY": REGISTRY,
        "PLATFORM_SOURCES": "events",
        "KUBECONFIG": "/probe/kubeconfig",
        "AIRFLOW_HOME": "/tmp/airflow",
        "AIRFLOW__CORE__DAGS_FOLDER": "/opt/airflow/dags",
    }
    code, out, err = run_container(
        podman_api,
        images["airflow"]["ref"],
        ["-c", "airflow db migrate >/dev/null 2>&1 && exec python /probe/probe.py"],
        entrypoint="bash",
        volumes={probe: "/probe"},
        environment=env,
    )
    assert code == 0, (out + err)[-4000:]
    report = json.loads(out.strip().splitlines()[-1])
    assert report["import_errors"] == {}, "\n".join(report["import_errors"].values())
    dags_on_disk = {p.stem for p in (ROOT / "airflow-repo" / "dags").glob("*.py")}
    assert dags_on_disk <= set(report["dags"])
    assert report["states"] == {"events_ingest": "success", "dbt_transform": "success"}
    pods = report["pods"]
    ingest = [p for p in pods if p["dag"] == "events_ingest"]
    transform = [p for p in pods if p["dag"] == "dbt_transform"]
    assert sorted(p["task"] for p in ingest) == ["ingest.extract", "ingest.load"], json.dumps(report)[:3000]
    assert len(transform) > 10
    for pod in ingest:
        assert pod["image"] == f"{REGISTRY}/scripts@{digests['scripts']}"
        assert pod["command"] == ["extract-load"]
        assert pod["args"][0] in {"extract", "load"} and "--start" in pod["args"]
    for pod in transform:
        assert pod["image"] == f"{REGISTRY}/dbt@{digests['dbt']}", pod["task"]
    for pod in pods:
        # Settings and secrets by reference only: inline, only the results path and dbt's own switches.
        inline = {e for e in pod["env"] if not e.startswith("AIRFLOW_CTX_")}
        assert inline <= {"RESULTS_FILE", "DBT_EXCLUDE_RESOURCE_TYPES", "DBT_SEND_ANONYMOUS_USAGE_STATS"}, pod
        assert pod["config_maps"] and pod["secrets"], pod
        # The kubelet refuses the pod unless its image runs as the non-root user the image declares.
        assert pod["run_as_non_root"] and pod["run_as_user"] == int(
            inspect(images["scripts"]["ref"])["Config"]["User"]
        )


BI_PROBE = """
import json, sys, time, urllib.request
base = "http://127.0.0.1:8088"
for _ in range(120):
    try:
        if urllib.request.urlopen(base + "/health", timeout=5).status == 200:
            break
    except OSError:
        time.sleep(1)
def get(path):
    with urllib.request.urlopen(base + path, timeout=60) as response:
        return json.load(response)
dashboard = get("/api/v1/dashboard/user-activity")["result"]
charts = {c["slice_name"]: c["id"] for c in get("/api/v1/chart/?q=(page_size:100)")["result"]}
rows = get(f"/api/v1/chart/{charts['Daily, weekly and monthly active users']}/data/")["result"][0]["data"]
dau = sum(row["DAU"] for row in rows)
print(json.dumps({"title": dashboard["dashboard_title"], "charts": len(charts), "dau": dau}))
"""


def test_the_bi_image_imports_the_dashboards_as_code_and_serves_them_to_the_public(
    images: dict[str, dict[str, Any]], podman_api: PodmanService, modelled: tuple[Path, int, str]
) -> None:
    """What a cluster's Superset runs: the chart's deploy job (`bi-assets deploy`: migrations, the users of
    the Secret, the image's own assets and roles; twice: no change), checked, then served; anonymous reads
    get the public dashboard and the warehouse's numbers."""
    data, _, _ = modelled
    code, _, err = run_container(
        podman_api,
        images["dbt"]["ref"],
        ["warehouse-snapshot"],
        volumes={data: "/data"},
        environment={**DBT_ENV, "WAREHOUSE_SNAPSHOT_PATH": "/data/warehouse-readers.duckdb"},
    )
    assert code == 0, err[-3000:]
    (data / "probe.py").write_text(BI_PROBE)
    script = (
        # Clusters read BigQuery (bigquery://<project>): its dialect is in the image.
        "set -e; python -c 'from sqlalchemy.engine import make_url; make_url(\"bigquery://p\").get_dialect()';"
        " bi-assets deploy >/tmp/deploy.log 2>&1 || { tail -50 /tmp/deploy.log; exit 1; };"
        " bi-assets deploy 2>/tmp/deploy-again.log | grep -v '^INFO'; bi-assets check;"
        " gunicorn -w 1 -b 127.0.0.1:8088 'superset.app:create_app()' >/tmp/gunicorn.log 2>&1 &"
        " python /data/probe.py"
    )
    code, out, err = run_container(
        podman_api,
        images["bi"]["ref"],
        ["-c", script],
        entrypoint="bash",
        volumes={data: "/data"},
        environment={
            "SUPERSET_SECRET_KEY": secrets.token_hex(32),
            "SUPERSET_METADATA_URL": "sqlite:////tmp/superset.db",
            "DBT_TARGET": "duckdb",
            "WAREHOUSE_SNAPSHOT_PATH": "/data/warehouse-readers.duckdb",
            # What the Secret superset-env gives the chart's pods.
            "BI_ADMIN_PASSWORD": secrets.token_urlsafe(12),
            "BI_CACHE_REFRESHER_PASSWORD": secrets.token_urlsafe(12),
        },
    )
    assert code == 0, (out + err)[-4000:]
    again = out.splitlines()
    for unchanged in ("user admin: unchanged", "assets: unchanged (20 objects)", "roles: unchanged"):
        assert unchanged in again, out[-3000:]
    assert "user airflow-cache-refresher: unchanged" in again, out[-3000:]
    shown = json.loads(out.strip().splitlines()[-1])
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        (dau,) = con.execute("select sum(dau) from analytics.user_activity_daily").fetchone() or (None,)
    assert shown == {"title": "User Activity & Attrition", "charts": 9, "dau": dau}
