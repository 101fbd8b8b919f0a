"""The public read-only viewer and the admin entrance: real nginx, real Airflow, a real browser.

`make up` starts a working platform (metadata in PostgreSQL): its scheduler loads
the stack's demo period with events_ingest from a real HTTP API, dbt_transform
follows on the raw tables' Assets and publishes the dashboard, so the viewer
shows real runs. Once they have settled:

- every route of Airflow's own OpenAPI documents (the REST API, the UI's API,
  the auth manager's API, the execution API) is tried with its method through
  the public site: every non-GET route is refused by nginx; the same routes
  sent straight to the api-server with a viewer token are refused by Airflow;
- every security header, TLS 1.0/1.1 refused, the rate limit trips and
  recovers, the admin entrance only for its network and Airflow's login;
- headless Chromium sees DAGs and task states, no working write action, and
  the dashboard (screenshots in .test-results/viewer/).

`nginx -t` also passes for the platform chart's render of every environment.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import re
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

pytestmark = pytest.mark.e2e  # runs the pipeline: DAG runs, the stack, containers

ROOT = Path(__file__).resolve().parents[1]
STACK = ROOT / "tools" / "stack.sh"
AIRFLOW_PYTHON = ROOT / "airflow-repo" / ".venv" / "bin" / "python"
POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ARTIFACTS = ROOT / ".test-results" / "viewer"
sys.path.insert(0, str(ROOT / "nginx"))

sys.path.insert(0, str(ROOT / "dbt-repo" / "python_tests"))

from publication_checks import USER_LEVEL, check_publication  # noqa: E402
from statsd_mapping import StatsdMapper, statsd_listener  # noqa: E402
from test_monitoring_live import used_metric_names  # noqa: E402

# What the public site refuses whatever the method (nginx/templates: the
# endpoints a Viewer might read but the public must not).
REFUSED_READS = re.compile(
    r"^/api/v2/(connections|variables|config|pools|providers|plugins|jobs|eventLogs|version|importErrors)(/|$)"
    r"|^/api/v2/dags/[^/]+/dagRuns/[^/]+/wait$|^/ui/(connections|auth/token)(/|$)"
)
SECURITY_HEADERS = {
    "strict-transport-security": "max-age=63072000; includeSubDomains",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the stack's throwaway self-signed certificate
    return context


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def refused_by_nginx(self) -> bool:
        return self.status == 403 and b"<center>nginx</center>" in self.body

    @property
    def refused_by_airflow(self) -> bool:
        return self.status in (401, 403) and self.body.startswith(b"{")


def request(
    base: str,
    path: str,
    method: str = "GET",
    token: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    source: str | None = None,
) -> Response:
    """One request, any method, any status, with an optional source address."""
    scheme, _, hostport = base.partition("://")
    host, _, port = hostport.partition(":")
    kwargs: dict[str, Any] = {"timeout": 30, "source_address": (source, 0) if source else None}
    connection = (
        http.client.HTTPSConnection(host, int(port), context=_tls(), **kwargs)
        if scheme == "https"
        else http.client.HTTPConnection(host, int(port), **kwargs)
    )
    sent = dict(headers or {})
    if token:
        sent["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


@dataclass
class Stack:
    env: dict[str, str]
    public: str
    admin: str
    api: str
    users: dict[str, dict[str, str]]
    dashboard: Path
    state: Path
    run_id: str
    file_token: str
    task_id: str
    bi_public: str = ""
    bi_admin: str = ""
    statsd_lines: list[str] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, user: str) -> str:
        if user not in self.tokens:
            response = request(
                self.api,
                "/auth/token",
                "POST",
                body={"username": user, "password": self.users[user]["password"]},
            )
            assert response.status in (200, 201), response.body
            self.tokens[user] = response.json()["access_token"]
        return self.tokens[user]


def _postgres_answers() -> bool:
    try:
        with psycopg.connect(POSTGRES, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Stack:
    if not _postgres_answers():
        message = f"no PostgreSQL at {POSTGRES} for the metadata DB"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    if not shutil.which("nginx"):
        pytest.fail("nginx is not installed: `make system-packages` installs it")
    state = tmp_path_factory.mktemp("viewer") / "stack"
    database = f"airflow_viewer_{uuid.uuid4().hex[:8]}"
    # Where the StatsD exporter would listen: every line Airflow sends, from the stack's runs.
    listener = statsd_listener()
    statsd_port, statsd_lines = listener.__enter__()
    with psycopg.connect(POSTGRES, autocommit=True) as con:
        con.execute(f'create database "{database}"')
    base_url = POSTGRES.rsplit("/", 1)[0].removeprefix("postgresql://")
    env = {
        **os.environ,
        "STACK_DIR": str(state),
        # The stack's own demo source, small: two weeks of events on a port of its own.
        "STACK_DEMO_DAYS": "14",
        "STACK_DEMO_EVENTS": "3000",
        "STACK_EVENTS_API_PORT": str(_free_port()),
        "STACK_PORT": str(_free_port()),
        "STACK_VIEWER_PORT": str(_free_port()),
        "STACK_ADMIN_PORT": str(_free_port()),
        # Superset (bi-repo) and its two sites.
        "STACK_BI_PORT": str(_free_port()),
        "STACK_BI_VIEWER_PORT": str(_free_port()),
        "STACK_BI_ADMIN_PORT": str(_free_port()),
        # The components' log servers: other tests may run a scheduler at the same time.
        "STACK_LOG_PORT": str(_free_port()),
        "STACK_TRIGGER_LOG_PORT": str(_free_port()),
        "STACK_POSTGRES_URL": POSTGRES,
        "STACK_DB_NAME": database,
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_PORT": str(statsd_port),
    }
    up = subprocess.run([STACK, "up"], env=env, capture_output=True, text=True, timeout=600)
    assert up.returncode == 0, up.stdout + up.stderr
    pgid = int((state / "stack.pgid").read_text())
    api = f"http://127.0.0.1:{env['STACK_PORT']}"
    try:
        assert "metadata DB: postgresql" in up.stdout
        # The post-deploy smoke check (a cluster's PostSync hook) passed before any run started.
        assert re.search(r"^smoke check: all \d+ passed$", up.stdout, re.M), up.stdout
        assert "==> Superset answers" in up.stdout, up.stdout
        # Before the first publish the dashboard's address says why it is empty, not 403.
        if not (state / "dashboard" / "index.html").exists():
            early = request(f"https://127.0.0.1:{env['STACK_VIEWER_PORT']}", "/dashboard/")
            assert early.status in (200, 404) and (early.status == 200 or b"not been published" in early.body)
        # The stack shows a working platform: its own scheduler loads the demo period (and the
        # latest scheduled day), then dbt_transform builds once over it and publishes the dashboard.
        runs = wait_until_settled(f"postgresql://{base_url}/{database}", deadline=time.monotonic() + 1200)
        assert ("events_ingest", "manual", "success") in runs, runs
        assert ("events_ingest", "scheduled", "success") in runs, runs
        # One build over everything loaded: `up` holds dbt_transform until the scheduler has
        # nothing due, the latest scheduled day included (see first_runs in tools/stack.sh).
        assert [run for run in runs if run[0] == "dbt_transform"] == [
            ("dbt_transform", "manual", "success")
        ], runs
        assert {run_state for _, _, run_state in runs} == {"success"}, runs
        assert (state / "dashboard" / "index.html").is_file()
        with psycopg.connect(f"postgresql://{base_url}/{database}") as con:
            # The build told Superset its cached numbers are stale: refresh_bi_cache ran.
            refreshed = con.execute(
                "select state from task_instance"
                " where dag_id = 'dbt_transform' and task_id = 'refresh_bi_cache'"
            ).fetchall()
            assert refreshed == [("success",)], refreshed
            paused = dict(con.execute("select dag_id, is_paused from dag").fetchall())
            run_id, task_id = con.execute(
                "select run_id, task_id from task_instance where dag_id = 'events_ingest' "
                "and run_id like 'demo%' and map_index = -1 and state = 'success' order by task_id limit 1"
            ).fetchone()
        assert paused == {
            "events_ingest": False,
            "dbt_transform": False,
            "platform_maintenance": False,
            "events_stream": True,  # it needs Kafka
            "dbt_image_refresh": True,
            "cloud_build": True,
        }, paused
        yield Stack(
            env=env,
            public=f"https://127.0.0.1:{env['STACK_VIEWER_PORT']}",
            admin=f"https://127.0.0.1:{env['STACK_ADMIN_PORT']}",
            api=api,
            users=json.loads((state / "users.json").read_text()),
            dashboard=state / "dashboard",
            state=state,
            run_id=run_id,
            file_token=request(api, "/api/v2/dags/events_ingest/details").json()["file_token"],
            task_id=task_id,
            bi_public=f"https://127.0.0.1:{env['STACK_BI_VIEWER_PORT']}",
            bi_admin=f"https://127.0.0.1:{env['STACK_BI_ADMIN_PORT']}",
            statsd_lines=statsd_lines,
        )
    finally:
        listener.__exit__(None, None, None)
        down = subprocess.run([STACK, "down"], env=env, capture_output=True, text=True, timeout=120)
        with psycopg.connect(POSTGRES, autocommit=True) as con:
            con.execute(f'drop database if exists "{database}" with (force)')
    # `make down` stops every component, nginx included, with one signal to the group.
    assert down.returncode == 0 and "stopped process group" in down.stdout, down.stdout + down.stderr
    assert not _group_alive(pgid), "a component survived `make down`"


def wait_until_settled(url: str, deadline: float) -> list[tuple[str, str, str]]:
    """The stack's DAG runs (dag, run type, state) once none is queued or running and the dashboard is out."""
    while True:
        with psycopg.connect(url) as con:
            runs = [
                (str(dag), str(kind), str(state))
                for dag, kind, state in con.execute("select dag_id, run_type, state from dag_run order by id")
            ]
        dags = {dag for dag, _, _ in runs}
        settled = not any(state in ("queued", "running") for _, _, state in runs)
        if settled and {"events_ingest", "dbt_transform"} <= dags:
            return runs
        assert time.monotonic() < deadline, f"the stack's runs did not settle: {runs}"
        time.sleep(5)


# Not the site's: podman creating a container network on this host (the image and GitOps tests
# run beside the browser tests) makes Chromium abort what is in flight with ERR_NETWORK_CHANGED.
HOST_NETWORK_EVENTS = ("net::ERR_NETWORK_CHANGED",)


def visit(page: Any, url: str, **options: Any) -> None:
    """`page.goto`, again when (and only when) the host's network changed under Chromium."""
    from playwright.sync_api import Error

    for attempt in range(3):
        try:
            page.goto(url, **options)
            return
        except Error as error:
            if attempt == 2 or not any(event in str(error) for event in HOST_NETWORK_EVENTS):
                raise


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_make_up_runs_every_component_healthy_once(stack: Stack) -> None:
    deadline = time.monotonic() + 120
    while True:
        health = request(stack.api, "/api/v2/monitor/health").json()
        states = {name: part.get("status") for name, part in health.items()}
        if set(states.values()) == {"healthy"} or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert states == {
        "metadatabase": "healthy",
        "scheduler": "healthy",
        "triggerer": "healthy",
        "dag_processor": "healthy",
    }
    # The same health, read by the public through the viewer.
    assert request(stack.public, "/api/v2/monitor/health").json()["scheduler"]["status"] == "healthy"
    # A second `up` sees the running stack instead of starting another.
    again = subprocess.run([STACK, "up"], env=stack.env, capture_output=True, text=True, timeout=60)
    assert "already running" in again.stdout


# --- the routes -------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    document: str
    method: str
    path: str


LIST_ROUTES = """
import json, pathlib
import airflow
from airflow.api_fastapi.execution_api.app import create_task_execution_api_app

latest = create_task_execution_api_app()._latest_version_router
print(json.dumps({
    "ui_spec": str(pathlib.Path(airflow.__file__).parent / "api_fastapi/core_api/openapi/_private_ui.yaml"),
    "execution": sorted({(m, r.path) for r in latest.routes for m in (getattr(r, "methods", None) or [])}),
}))
"""


def openapi_routes(stack: Stack) -> list[Route]:
    """Every operation of Airflow's own OpenAPI documents, as the running api-server publishes them."""
    documents: dict[str, tuple[str, dict[str, Any]]] = {
        "rest": ("", request(stack.api, "/openapi.json").json()),
        "auth": ("/auth", request(stack.api, "/auth/openapi.json").json()),
    }
    # The UI's private API ships as a document inside Airflow (not served), and the
    # execution API's versioned document is served truncated (3.3.2: a Content-Length
    # with no body), so both come from the installed Airflow itself.
    listed = subprocess.run(
        [AIRFLOW_PYTHON, "-c", LIST_ROUTES],
        env={
            **os.environ,
            "AIRFLOW_HOME": str(stack.state / "routes"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    installed = json.loads(listed.stdout.strip().splitlines()[-1])
    documents["ui"] = ("", yaml.safe_load(Path(installed["ui_spec"]).read_text()))
    documents["execution"] = (
        "/execution",
        {
            "paths": {
                path: {method.lower(): {} for method, p in installed["execution"] if p == path}
                for _, path in installed["execution"]
            }
        },
    )
    routes = []
    for name, (prefix, spec) in documents.items():
        for path, operations in spec["paths"].items():
            for method in operations:
                if method in {"get", "put", "post", "patch", "delete", "head", "options"}:
                    routes.append(Route(name, method.upper(), prefix + path))
    return sorted(set(routes), key=lambda r: (r.document, r.path, r.method))


def concrete(path: str, stack: Stack) -> str:
    """Fill path parameters with real identifiers where there are some, so a refusal is not a 404."""
    known = {
        "dag_id": "events_ingest",
        "dag_run_id": stack.run_id,
        "run_id": stack.run_id,
        "task_id": stack.task_id,
        "try_number": "1",
        "map_index": "0",
        "username": "admin",
        "name": "Viewer",
        "file_token": stack.file_token,
    }
    return re.sub(r"\{([^}]+)\}", lambda m: urllib.request.quote(known.get(m[1], "x"), safe=""), path)


# Routes whose authorization depends on the body (bulk actions name what they
# touch): they get a well-formed body, so Airflow has to decide on permission
# instead of rejecting the request's shape with a 422.
BULK_DELETE = {"actions": [{"action": "delete", "entities": ["no_such_entity"]}]}
BODIES: dict[tuple[str, str], Any] = {
    ("PATCH", "/api/v2/connections"): BULK_DELETE,
    ("PATCH", "/api/v2/pools"): BULK_DELETE,
    ("PATCH", "/api/v2/variables"): BULK_DELETE,
    ("PATCH", "/api/v2/dags/{dag_id}/dagRuns"): BULK_DELETE,
    ("POST", "/api/v2/connections/enqueue-test"): {
        "connection_id": "no_such_connection",
        "conn_type": "http",
    },
    ("POST", "/api/v2/dags/{dag_id}/clearDagRuns"): {
        "dag_runs": [{"dag_run_id": "no_such_run"}],
        "dry_run": True,
    },
}
# What Airflow lets a viewer's own token do that is not a change to pipelines:
# exchange or refresh its credentials, read with a filter sent as a body, and
# keep its own favourites. nginx refuses all of them on the public side.
VIEWER_MAY = {
    ("POST", "/auth/token"): "credential exchange",
    ("POST", "/auth/token/cli"): "credential exchange",
    ("POST", "/ui/auth/token"): "token refresh for the caller",
    ("POST", "/api/v2/dags/{dag_id}/dagRuns/list"): "a read with its filter in the body",
    (
        "POST",
        "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/list",
    ): "a read with its filter in the body",
    ("POST", "/api/v2/backfills/dry_run"): "a read: what a backfill would create",
    ("POST", "/api/v2/dags/{dag_id}/favorite"): "the caller's own favourites",
    ("POST", "/api/v2/dags/{dag_id}/unfavorite"): "the caller's own favourites",
}


def test_every_write_route_is_refused_by_nginx_and_by_airflow(stack: Stack) -> None:
    """Every non-GET operation Airflow documents: 403 from nginx publicly, refused by Airflow for a viewer."""
    routes = openapi_routes(stack)
    writes = [r for r in routes if r.method not in ("GET", "HEAD")]
    assert len(routes) > 150 and len(writes) > 60, (len(routes), len(writes))
    viewer = stack.token("viewer")
    admin = stack.token("admin")
    not_refused_publicly, not_refused_by_airflow, allowed_reads = [], [], []
    for route in writes:
        path = concrete(route.path, stack)
        body = BODIES.get((route.method, route.path), {})
        # The public site, with and without an admin's credentials: nginx answers, Airflow never sees it.
        for token in (None, admin):
            response = request(stack.public, path, route.method, token=token, body=body)
            if not response.refused_by_nginx:
                not_refused_publicly.append((route, token is not None, response.status))
        # Straight to the api-server as the viewer.
        response = request(stack.api, path, route.method, token=viewer, body=body)
        if response.refused_by_airflow:
            continue
        if (route.method, route.path) in VIEWER_MAY and response.status < 500:
            allowed_reads.append((route, response.status))
        else:
            not_refused_by_airflow.append((route, response.status, response.body[:200]))
    counts = {
        "routes": len(routes),
        "non_get_routes": len(writes),
        "refused_at_nginx": len(writes) - len({r for r, *_ in not_refused_publicly}),
        "refused_by_airflow": len(writes) - len(allowed_reads) - len(not_refused_by_airflow),
        "reads_by_post_or_token_exchange": len(allowed_reads),
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "route-counts.json").write_text(
        json.dumps(
            {
                **counts,
                "allowed_by_airflow": {
                    f"{r.method} {r.path}": VIEWER_MAY[(r.method, r.path)] for r, _ in allowed_reads
                },
            },
            indent=2,
        )
    )
    print(counts)
    assert not not_refused_publicly, not_refused_publicly
    assert not not_refused_by_airflow, not_refused_by_airflow


def test_read_routes_answer_publicly_and_refused_reads_do_not(stack: Stack) -> None:
    """Every GET operation of the REST and UI APIs through the public site: refused exactly where meant."""
    reads = [r for r in openapi_routes(stack) if r.method == "GET" and r.document in ("rest", "ui")]
    wrong = []
    for route in reads:
        path = concrete(route.path, stack)
        response = request(stack.public, path)
        meant_refused = bool(REFUSED_READS.match(route.path))
        if meant_refused != response.refused_by_nginx or response.status >= 500:
            wrong.append((route.path, response.status, response.body[:120]))
    assert not wrong, wrong
    # What the viewer came for answers with data, through the public site.
    dags = request(stack.public, "/api/v2/dags?limit=100").json()
    assert {"events_ingest", "dbt_transform"} <= {d["dag_id"] for d in dags["dags"]}
    run = urllib.request.quote(stack.run_id, safe="")
    instances = request(stack.public, f"/api/v2/dags/events_ingest/dagRuns/{run}/taskInstances").json()
    assert instances["total_entries"] > 0 and {t["state"] for t in instances["task_instances"]} == {"success"}
    log = request(
        stack.public, f"/api/v2/dags/events_ingest/dagRuns/{run}/taskInstances/{stack.task_id}/logs/1"
    )
    assert log.status == 200 and "content" in log.json()  # the log reader answers (streamed, unbuffered)
    # A token sent to the public site is dropped: a forged one still reads as the public viewer.
    assert request(stack.public, "/api/v2/dags", token="forged").status == 200
    assert request(stack.api, "/api/v2/dags", token="forged").refused_by_airflow


def test_security_headers_tls_and_compression(stack: Stack) -> None:
    page = request(stack.public, "/dags", headers={"Accept-Encoding": "gzip"})
    assert page.status == 200
    for name, value in SECURITY_HEADERS.items():
        assert page.headers.get(name) == value, (name, page.headers.get(name))
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "object-src 'none'" in csp
    assert "camera=()" in page.headers["permissions-policy"]
    assert page.headers["server"] == "nginx"  # server_tokens off: no version
    # Headers are on refusals too, and the dashboard gets a CSP without script.
    refused = request(stack.public, "/api/v2/connections")
    assert refused.status == 403 and refused.headers.get("strict-transport-security")
    dashboard = request(stack.public, "/dashboard/")
    assert dashboard.status == 200 and b"User Activity" in dashboard.body
    assert dashboard.headers["content-security-policy"].startswith("default-src 'none'")
    # The UI's assets are compressed.
    asset = re.search(rb'src="\./(static/assets/[^"]+\.js)"', request(stack.public, "/").body)
    assert asset, "no script in the UI's index page"
    compressed = request(stack.public, "/" + asset[1].decode(), headers={"Accept-Encoding": "gzip"})
    assert compressed.status == 200 and compressed.headers.get("content-encoding") == "gzip"
    # Request bodies are refused above the limit before anything else.
    big = request(stack.public, "/api/v2/dags", "GET", headers={"Content-Length": "4096"})
    assert big.status in (403, 413, 400)
    # TLS: 1.2 and 1.3 are served; 1.0 and 1.1 are refused by the server (its alert, not our client's).
    port = int(stack.public.rsplit(":", 1)[1])
    for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        with pytest.raises(ssl.SSLError, match="alert protocol version"):
            handshake(port, version)
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        assert handshake(port, version) == version.name.replace("_", ".")


def handshake(port: int, version: ssl.TLSVersion) -> str | None:
    """A TLS handshake offering exactly one protocol version; returns what was negotiated."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("ALL:@SECLEVEL=0")  # the client may offer old protocols: the server must say no
    context.minimum_version = context.maximum_version = version
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.version()


def test_the_admin_entrance_needs_its_network_and_airflows_login(stack: Stack) -> None:
    # Another network (127.0.0.2 is not in the local allowlist) is turned away before Airflow.
    elsewhere = request(stack.admin, "/api/v2/dags", source="127.0.0.2")
    assert elsewhere.refused_by_nginx
    # No login: the admin entrance passes everything to Airflow, which refuses anonymous writes.
    anonymous = request(stack.admin, "/api/v2/dags/events_ingest", "PATCH", body={"is_paused": False})
    assert anonymous.refused_by_airflow, anonymous
    # The admin logs in through the entrance and may change things.
    login = request(
        stack.admin,
        "/auth/token",
        "POST",
        body={"username": "admin", "password": stack.users["admin"]["password"]},
    )
    assert login.status in (200, 201), login.body
    admin = login.json()["access_token"]
    before = request(stack.admin, "/api/v2/dags/events_ingest", token=admin).json()["is_paused"]
    changed = request(
        stack.admin, "/api/v2/dags/events_ingest", "PATCH", token=admin, body={"is_paused": not before}
    )
    assert changed.status == 200 and changed.json()["is_paused"] is (not before)
    request(stack.admin, "/api/v2/dags/events_ingest", "PATCH", token=admin, body={"is_paused": before})
    # The viewer's login works there too, and Airflow refuses its writes.
    viewer = request(
        stack.admin,
        "/auth/token",
        "POST",
        body={"username": "viewer", "password": stack.users["viewer"]["password"]},
    ).json()["access_token"]
    for method, path, body in (
        ("PATCH", "/api/v2/dags/events_ingest", {"is_paused": not before}),
        ("POST", "/api/v2/dags/events_ingest/dagRuns", {"logical_date": None}),
        ("DELETE", "/api/v2/dags/events_ingest", None),
        ("GET", "/api/v2/connections", None),
        ("GET", "/api/v2/config", None),
    ):
        refused = request(stack.admin, path, method, token=viewer, body=body)
        assert refused.refused_by_airflow and refused.status == 403, (method, path, refused.status)
    # Task pods never come through an entrance.
    assert request(stack.admin, "/execution/health").refused_by_nginx
    # A wrong password is refused.
    assert (
        request(
            stack.admin,
            "/auth/token",
            "POST",
            body={"username": "admin", "password": stack.users["viewer"]["password"]},
        ).status
        == 401
    )


def test_the_browser_sees_pipelines_and_no_working_write_action(stack: Stack) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    admin = stack.token("admin")
    run = urllib.request.quote(stack.run_id, safe="")

    def state() -> dict[str, Any]:
        dag = request(stack.api, "/api/v2/dags/events_ingest", token=admin).json()
        runs = request(stack.api, "/api/v2/dags/events_ingest/dagRuns", token=admin).json()
        tis = request(
            stack.api, f"/api/v2/dags/events_ingest/dagRuns/{run}/taskInstances", token=admin
        ).json()
        return {
            "paused": dag["is_paused"],
            "runs": sorted((r["dag_run_id"], r["state"]) for r in runs["dag_runs"]),
            "task_instances": sorted(
                (t["task_id"], t["map_index"], t["state"]) for t in tis["task_instances"]
            ),
        }

    before = state()
    writes: list[tuple[str, int, str, bool]] = []
    unexpected: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        context = browser.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 900})
        page = context.new_page()

        def on_response(response: Any) -> None:
            if response.request.method not in ("GET", "HEAD"):
                writes.append(
                    (
                        response.request.method,
                        response.status,
                        response.url,
                        b"<center>nginx" in response.body(),
                    )
                )
            elif response.status >= 400 and not REFUSED_READS.match(urllib.parse.urlsplit(response.url).path):
                unexpected.append(f"{response.status} {response.url}")

        page.on("response", on_response)
        page.on("pageerror", lambda error: unexpected.append(f"page error: {error}"))

        # The DAG list.
        visit(page, f"{stack.public}/dags", wait_until="networkidle")
        for dag_id in ("events_ingest", "dbt_transform"):
            page.get_by_role("link", name=dag_id).first.wait_for(timeout=30_000)
        page.screenshot(path=ARTIFACTS / "dags.png", full_page=True)

        # A run's task states.
        visit(page, f"{stack.public}/dags/events_ingest/runs/{run}", wait_until="networkidle")
        page.get_by_role("link", name=stack.task_id, exact=True).first.wait_for(timeout=30_000)
        page.get_by_role("link", name="ingest.load", exact=True).first.wait_for()
        assert page.get_by_text("Success", exact=True).count() >= 2  # the run's and its tasks' states
        page.screenshot(path=ARTIFACTS / "run-task-states.png", full_page=True)

        # Every write action the UI offers is tried: trigger, pause, clear. None may work.
        visit(page, f"{stack.public}/dags/events_ingest", wait_until="networkidle")
        page.get_by_role("button", name="Trigger Dag").click()
        page.get_by_role("dialog").get_by_role("button", name="Trigger", exact=True).click()
        page.wait_for_timeout(1500)
        page.screenshot(path=ARTIFACTS / "trigger-refused.png")
        page.keyboard.press("Escape")
        visit(page, f"{stack.public}/dags/events_ingest", wait_until="networkidle")
        page.get_by_role("checkbox").first.click(force=True)
        page.wait_for_timeout(1500)
        visit(page, f"{stack.public}/dags/events_ingest/runs/{run}", wait_until="networkidle")
        page.get_by_role("button", name="Press shift+c to clear").click()
        page.wait_for_timeout(1500)
        page.screenshot(path=ARTIFACTS / "clear-refused.png")
        # The dialog asks Airflow what a clear would touch (a POST dry run); refused, it
        # leaves its confirm button disabled. Were it enabled, it is pressed.
        confirm = page.get_by_role("dialog").get_by_role("button").last
        if confirm.is_enabled():
            confirm.click()
            page.wait_for_timeout(1500)

        # The dashboard, under its script-free CSP.
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text) if message.type == "error" else None)
        visit(page, f"{stack.public}/dashboard/", wait_until="networkidle")
        assert "User Activity" in page.title() or page.get_by_text("User Activity").count() > 0
        page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)
        assert not console, console
        browser.close()

    assert writes, "the UI sent no write at all: the actions were not tried"
    assert all(status == 403 and by_nginx for _, status, _, by_nginx in writes), writes
    assert not unexpected, unexpected
    assert state() == before, "a public write action changed Airflow's state"


def _warehouse(stack: Stack) -> Any:
    """The stack's warehouse, read-only (a load may hold it for a moment: wait for it)."""
    import duckdb

    deadline = time.monotonic() + 120
    while True:
        try:
            return duckdb.connect(str(stack.state / "warehouse.duckdb"), read_only=True)
        except duckdb.IOException:
            assert time.monotonic() < deadline, "the stack's warehouse stayed locked"
            time.sleep(2)


def test_the_runs_docs_and_public_data_are_served_read_only(stack: Stack) -> None:
    """Issue 27: what dbt_transform published, through the public viewer, equal to the warehouse."""

    def fetch(path: str) -> bytes:
        response = request(stack.public, f"/data/v1/{path}")
        assert response.status == 200, (path, response.status)
        return response.body

    with _warehouse(stack) as con:
        catalog = check_publication(fetch, con)
    publication = catalog["publication"]
    some_file = f"/data/v1/{catalog['datasets'][0]['files']['parquet']['path']}"

    # Caching: the pointers revalidate (304 when unchanged), a publication's files are immutable.
    for path, cache in (
        ("/data/v1/catalog.json", "no-cache"),
        ("/docs/", "no-cache"),
        (some_file, "public, max-age=31536000, immutable"),
    ):
        first = request(stack.public, path)
        assert first.status == 200 and first.headers["cache-control"] == cache, (path, first.headers)
        assert first.headers["etag"] and first.headers["last-modified"]
        for condition in (
            {"If-None-Match": first.headers["etag"]},
            {"If-Modified-Since": first.headers["last-modified"]},
        ):
            again = request(stack.public, path, headers=condition)
            assert again.status == 304 and again.body == b"", (path, condition)
        head = request(stack.public, path, "HEAD")
        assert head.status == 200 and head.body == b"" and head.headers["etag"] == first.headers["etag"]
        public_data = path.startswith("/data/")
        assert (first.headers.get("access-control-allow-origin") == "*") is public_data
    docs = request(stack.public, "/docs/")
    assert b"<title>dbt Docs</title>" in docs.body
    assert "script-src 'self';" in docs.headers["content-security-policy"]

    # Read-only: every other method refused, nothing changed.
    before = (stack.state / "data" / "v1" / "catalog.json").read_bytes()
    for path in ("/docs/", "/docs/manifest.json", "/data/v1/catalog.json", some_file):
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            assert request(stack.public, path, method).status == 403, (method, path)
    assert (stack.state / "data" / "v1" / "catalog.json").read_bytes() == before

    # No folder listed; no user-level table by any path, and none on disk to find.
    for path in ("/data/", "/data/v1/", "/data/v1/publications/", f"/data/v1/publications/{publication}/",
                 "/docs/", "/docs/assets/"):  # fmt: skip
        response = request(stack.public, path)
        assert b"Index of" not in response.body and (path == "/docs/" or response.status == 404), path
    for name in USER_LEVEL:
        for fmt in ("parquet", "csv", "json"):
            for path in (
                f"/data/v1/publications/{publication}/{name}.{fmt}",
                f"/data/v1/{name}.{fmt}",
                f"/data/{name}.{fmt}",
                f"/data/v1/publications/{publication}/../{name}.{fmt}",
                f"/data/v1/publications/{publication}/%2e%2e/%2e%2e/%2e%2e/warehouse.duckdb",
                f"/docs/{name}.{fmt}",
            ):
                assert request(stack.public, path).status in (400, 404), path
    published = [p.name for folder in ("data", "docs") for p in (stack.state / folder).rglob("*")]
    assert not [p for p in published if any(p.startswith(name) for name in USER_LEVEL)], published


def test_the_docs_site_shows_the_lineage_of_the_dashboard_in_the_browser(stack: Stack) -> None:
    """dbt's docs through the viewer, under their CSP: no console error, the exposure's whole lineage."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    console: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        context = browser.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.on("console", lambda message: console.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: console.append(f"page error: {error}"))
        page.on("requestfailed", lambda failed: console.append(f"failed: {failed.url}"))
        visit(
            page,
            f"{stack.public}/docs/#!/exposure/exposure.platform.user_activity_and_attrition",
            wait_until="networkidle",
        )
        page.get_by_text("User Activity & Attrition").first.wait_for(timeout=30_000)
        page.locator(".launcher-btn").click()
        page.locator("[ng-click='showExpanded()']").click()
        page.wait_for_timeout(2000)
        shown = page.evaluate(
            """() => angular.element(document.body).injector().get('graph').graph.elements
                .filter(e => e.group === 'nodes').map(e => e.data.label)"""
        )
        page.screenshot(path=ARTIFACTS / "docs-lineage.png")
        browser.close()
    # From the raw source, through every layer, to the dashboard exposure.
    assert {
        "raw.events",
        "stg_events",
        "fct_events",
        "growth_accounting_weekly",
        "User Activity & Attrition",
    } <= set(shown), shown
    assert not console, console


def test_the_rate_limit_trips_under_a_burst_and_recovers(stack: Stack) -> None:
    """Per-client limit: a bounded burst well over the allowance gets 429s, then requests pass again.

    The burst asks for the dashboard, which nginx serves itself under the same
    limit as the API, over kept-alive connections: requests arrive as fast as
    nginx answers. (A new TLS handshake per request from a Python client on a
    loaded 2-core machine, or an api-server answering slowly, can keep a burst
    under 20 r/s, and then the limit rightly never trips.)
    """
    host, _, port = stack.public.partition("://")[2].partition(":")

    def burst_on_one_connection(_: int) -> list[int]:
        connection = http.client.HTTPSConnection(host, int(port), context=_tls(), timeout=30)
        statuses = []
        try:
            for _ in range(50):
                connection.request("GET", "/dashboard/")
                response = connection.getresponse()
                response.read()
                statuses.append(response.status)
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()  # http.client reconnects on the next request
        finally:
            connection.close()
        return statuses

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        statuses = [status for batch in pool.map(burst_on_one_connection, range(8)) for status in batch]
    assert statuses.count(429) > 0, statuses
    assert statuses.count(200) > 0
    assert set(statuses) <= {200, 429}, set(statuses)
    # The allowance refills (20 r/s locally): after a pause, requests pass again.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(2)
        if all(request(stack.public, "/dashboard/").status == 200 for _ in range(5)):
            break
    else:
        pytest.fail("the rate limit did not recover within 30 s")


def test_airflows_own_statsd_through_the_mapping_carries_every_airflow_metric_used(stack: Stack) -> None:
    """What Airflow really sent (the demo's DAG runs, then the stack's scheduler running a DAG run),
    mapped as the statsd exporter maps it, holds every airflow_* metric the dashboards and alerts read."""
    admin = stack.token("admin")
    dag = "/api/v2/dags/platform_maintenance"
    was_paused = request(stack.api, dag, token=admin).json()["is_paused"]
    assert request(stack.api, dag, "PATCH", token=admin, body={"is_paused": False}).status == 200
    try:
        run = request(stack.api, f"{dag}/dagRuns", "POST", token=admin, body={"logical_date": None})
        assert run.status == 200, run.body
        run_id = urllib.request.quote(run.json()["dag_run_id"], safe="")
        deadline = time.monotonic() + 300
        while (state := request(stack.api, f"{dag}/dagRuns/{run_id}", token=admin).json()["state"]) not in (
            "success",
            "failed",
        ):
            assert time.monotonic() < deadline, f"platform_maintenance still {state}"
            time.sleep(2)
        assert state == "success"
    finally:
        request(stack.api, dag, "PATCH", token=admin, body={"is_paused": was_paused})
    time.sleep(3)  # the scheduler's next heartbeat and gauges
    mapper = StatsdMapper()
    lines = list(stack.statsd_lines)
    assert any(line.startswith("airflow.scheduler_heartbeat:") for line in lines)
    mapped = [m for line in lines if (m := mapper.map_line(line)) is not None]
    # One metric name, one label set: the exporter refuses a second one.
    label_sets: dict[str, set[tuple[str, ...]]] = {}
    for metric in mapped:
        label_sets.setdefault(metric.name, set()).add(tuple(key for key, _ in metric.labels))
    assert {name: keys for name, keys in label_sets.items() if len(keys) > 1} == {}
    emitted = {series for metric in mapped for series in metric.series_names}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "airflow-statsd-mapped.json").write_text(json.dumps(sorted(emitted), indent=2))
    assert "airflow_dagrun_duration_seconds_count" in emitted  # the scheduler finished a run
    used = used_metric_names()
    airflow = {name: sorted(where) for name, where in used.items() if name.startswith("airflow_")}
    assert len(airflow) >= 8, airflow
    missing = {name: where for name, where in airflow.items() if name not in emitted}
    assert not missing, f"used but never emitted by Airflow: {missing}"
    # The labels the dashboards group by are there.
    finish = [m for m in mapped if m.name == "airflow_ti_finish"]
    assert finish and {"dag_id", "task_id", "state"} == {key for key, _ in finish[0].labels}


# --- Superset (bi-repo) behind the same nginx ----------------------------------------

BI_HOME = "/superset/dashboard/user-activity/"
# What the public Superset site lets through besides GET and HEAD (nginx/templates/superset.conf.template).
BI_PUBLIC_POSTS = {"/api/v1/chart/data", "/superset/log/"}


def superset_admin_token(stack: Stack) -> str:
    password = json.loads((stack.state / "superset" / "admin.json").read_text())["password"]
    login = {"username": "admin", "password": password, "provider": "db", "refresh": False}
    response = request(stack.bi_admin, "/api/v1/security/login", "POST", body=login)
    assert response.status == 200, response.body[:500]
    return str(response.json()["access_token"])


def test_superset_public_site_serves_the_dashboard_and_refuses_every_write_route(stack: Stack) -> None:
    # The front page is the public dashboard, standalone (no menu, no login link).
    assert request(stack.bi_public, "/").headers["location"].endswith(BI_HOME)
    assert "standalone=1" in request(stack.bi_public, BI_HOME).headers["location"]
    page = request(stack.bi_public, BI_HOME + "?standalone=1")
    assert page.status == 200 and b"User Activity" in page.body
    for name, value in SECURITY_HEADERS.items():
        assert page.headers.get(name) == value, name
    # Superset's own policy, with a nonce drawn for this response; nothing from another origin.
    csp = page.headers["content-security-policy"]
    assert re.search(r"script-src 'self' 'strict-dynamic' 'nonce-[^']+'", csp) and "https:" not in csp
    assert "access-control-allow-origin" not in page.headers
    assert "set-cookie" not in page.headers  # the public side keeps no session

    # Every write route Superset documents is refused by nginx on the public side, whatever the body.
    token = superset_admin_token(stack)
    spec = request(stack.bi_admin, "/api/v1/_openapi", token=token).json()
    writes = [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, operations in spec["paths"].items()
        for method in operations
        if method in {"put", "post", "patch", "delete"} and path not in BI_PUBLIC_POSTS
    ]
    assert len(writes) > 100, len(writes)
    let_through = [
        (method, path)
        for method, path in writes
        if not request(stack.bi_public, path, method, body={}).refused_by_nginx
    ]
    assert not let_through, let_through
    # What a visitor has no use for is not served at all, reads included.
    for path in ("/sqllab/", "/explore/", "/login/", "/api/v1/database/", "/api/v1/me/", "/users/list/",
                 "/api/v1/security/csrf_token/", "/api/v1/sqllab/results/", "/api/v1/_openapi"):  # fmt: skip
        assert request(stack.bi_public, path).refused_by_nginx, path

    # Chart data is a read: the role lets the public query the dashboard's datasets only.
    charts = request(stack.bi_public, "/api/v1/chart/?q=(page_size:100)").json()["result"]
    assert {c["slice_name"] for c in charts} >= {"Stickiness", "Weekly retention"}
    assert request(stack.bi_admin, "/api/v1/database/", token=token).status == 200  # the admin may
    with sqlite3.connect(stack.state / "superset" / "superset.db") as con:
        ids = dict(con.execute("select table_name, id from tables").fetchall())
    shown = {
        "datasource": {"id": ids["user_activity_daily"], "type": "table"},
        "queries": [{"metrics": ["count"]}],
    }
    hidden = {
        "datasource": {"id": ids["miles_economy"], "type": "table"},
        "queries": [{"metrics": ["count"]}],
    }
    assert request(stack.bi_public, "/api/v1/chart/data", "POST", body=shown).status == 200
    refused = request(stack.bi_public, "/api/v1/chart/data", "POST", body=hidden)
    assert refused.status == 403 and not refused.refused_by_nginx  # Superset's role said no

    # The admin entrance answers only its network.
    assert request(stack.bi_admin, "/login/", source="127.0.0.2").refused_by_nginx
    assert request(stack.bi_admin, "/login/").status == 200


def test_superset_in_the_browser_filters_as_the_warehouse_says_and_writes_nothing(stack: Stack) -> None:
    """The public dashboard in Chromium: no console error; the date-range filter set through the UI
    changes the DAU chart to exactly the warehouse's days; writes sent from the page are refused."""
    import datetime as dt

    import duckdb
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(stack.state / "warehouse-readers.duckdb"), read_only=True) as con:
        dau = dict(con.execute("select period_start, dau from analytics.user_activity_daily").fetchall())
    # The later half of the days: the filter must drop the others.
    end = max(dau) + dt.timedelta(days=1)
    start = end - dt.timedelta(days=len(dau) // 2)
    expected = {day: value for day, value in dau.items() if start <= day < end}
    assert 0 < len(expected) < len(dau)
    dau_chart = next(
        c["id"]
        for c in request(stack.bi_public, "/api/v1/chart/?q=(page_size:100)").json()["result"]
        if c["slice_name"] == "Daily, weekly and monthly active users"
    )

    errors: list[str] = []
    shown: list[dict[dt.date, int]] = []

    def on_response(response: Any) -> None:
        if "/api/v1/chart/data" in response.url and f"%22slice_id%22%3A{dau_chart}%7D" in response.url:
            rows = response.json()["result"][0]["data"]
            shown.append(
                {dt.datetime.fromtimestamp(r["period_start"] / 1000, dt.UTC).date(): r["DAU"] for r in rows}
            )

    with sync_playwright() as playwright:
        # The stack's certificate is self-signed: Chromium's service worker fetch needs to accept it.
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=["--no-sandbox", "--ignore-certificate-errors"]
        )
        # Superset renders only the charts in (or near) the viewport (dashboard virtualization): tall
        # enough for the whole dashboard (about 2,200 px), or the retention table at its foot, which
        # the wait below needs, may never be drawn (it sat on an 1,800 px viewport's edge).
        context = browser.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 3000})
        page = context.new_page()
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
        page.on("response", on_response)
        failed: list[str] = []
        page.on("requestfailed", lambda request: failed.append(f"{request.url}: {request.failure}"))
        # The dashboard is drawn once its scripts ran. When the host's network changes under Chromium
        # (parallel tests create podman networks) it aborts the scripts in flight and the page stays
        # blank: load it again then, and only then; any other failure fails the test, with its cause.
        for attempt in range(3):
            failed.clear()
            errors.clear()  # what an aborted load logged is not the page's
            visit(page, stack.bi_public + "/", wait_until="networkidle", timeout=120_000)
            try:
                page.get_by_text("Weekly retention").first.wait_for(timeout=60_000)
                break
            except Exception as drawn:
                blank = ARTIFACTS / f"superset-dashboard-not-drawn-{attempt}.png"
                page.screenshot(path=blank, full_page=True)
                network = [f for f in failed if any(event in f for event in HOST_NETWORK_EVENTS)]
                if attempt == 2 or not network:
                    raise AssertionError(f"the dashboard was not drawn; failed requests: {failed}") from drawn
        page.wait_for_timeout(2000)
        page.screenshot(path=ARTIFACTS / "superset-dashboard.png", full_page=True)
        assert shown and shown[-1] == dau, "the unfiltered DAU chart is not the warehouse's"

        # The native date-range filter, set as a visitor sets it: its popover, range type "Advanced",
        # then the start and end. A click that lands while a menu animates is retried.
        page.get_by_text("No filter").first.click()
        popover = page.locator(".ant-popover:visible", has_text="Range type")
        popover.wait_for(timeout=30_000)
        inputs = popover.locator("input:not([type=search])")  # not the select's own search box
        for attempt in range(3):
            popover.locator(".ant-select").first.click()
            page.locator(".ant-select-item-option:visible", has_text="Advanced").click()
            try:
                expect(inputs).to_have_count(2, timeout=10_000)
                break
            except AssertionError:
                page.screenshot(path=ARTIFACTS / f"superset-filter-attempt-{attempt}.png")
        inputs.nth(0).fill(start.isoformat())
        inputs.nth(1).fill(end.isoformat())
        page.wait_for_timeout(1000)
        popover.get_by_role("button", name="APPLY").click()
        page.get_by_role("button", name="Apply filters").click()
        deadline = time.monotonic() + 60
        while shown[-1] != expected and time.monotonic() < deadline:
            page.wait_for_timeout(500)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(2000)  # the charts' own transition, or the screenshot shows it half-way
        page.screenshot(path=ARTIFACTS / "superset-dashboard-filtered.png", full_page=True)
        assert shown[-1] == expected, (shown[-1], expected)

        site_errors = [e for e in errors if not any(event in e for event in HOST_NETWORK_EVENTS)]
        assert not site_errors, site_errors
        # Writes, sent from the page as its own script would: refused by nginx.
        statuses = page.evaluate(
            """async (chart) => {
                const send = (method, path, body) => fetch(path, {method, body: JSON.stringify(body),
                    headers: {"Content-Type": "application/json"}}).then(r => r.status);
                return [
                    await send("PUT", `/api/v1/chart/${chart}`, {description: "defaced"}),
                    await send("DELETE", `/api/v1/chart/${chart}`),
                    await send("POST", "/api/v1/dashboard/", {dashboard_title: "spam"}),
                    await send("POST", "/api/v1/sqllab/execute/", {database_id: 1, sql: "select 1"}),
                    await send("POST", "/api/v1/dashboard/1/filter_state", {value: "{}"}),
                ];
            }""",
            dau_chart,
        )
        browser.close()
    assert statuses == [403] * 5, statuses
    dashboard = request(stack.bi_public, "/api/v1/dashboard/user-activity").json()["result"]
    assert dashboard["dashboard_title"] == "User Activity & Attrition"
