"""The public viewer's edges, with real nginx in front of an upstream that records what reaches it.

`test_public_viewer.py` drives the whole stack (Airflow behind nginx); these
cases need to see what nginx forwards, so the upstream here is a recorder:
the same template, rendered as `make up` renders it, in front of a Python
HTTP server. Each case was reproduced against the template before it was
hardened (issue 20, item 10).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "nginx"))
import render as nginx_render  # noqa: E402

BIG = 8 * 1024 * 1024


pytestmark = pytest.mark.platform  # configuration checked by its tools, no pipeline run


@dataclass
class Recorder:
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [path for path, _ in self.seen]


@dataclass
class Viewer:
    port: int
    prefix: Path
    upstream: Recorder
    bi_port: int = 0  # Superset's public site (superset.conf.template), in front of the same recorder

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        status, _, body = self.send("GET", path, headers)
        return status, body

    def send(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None,
        port: int | None = None,
    ) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection("127.0.0.1", port or self.port, context=context, timeout=30)
        try:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            connection.putheader("Host", "localhost")
            for key, value in (headers or {}).items():
                connection.putheader(key, value)
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Viewer]:
    if not shutil.which("nginx"):
        pytest.fail("nginx is not installed: `make system-packages` installs it")
    recorder = Recorder()

    class Upstream(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            recorder.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            body = b"x" * BIG if self.path.startswith("/api/v2/dags/big") else b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            # An upstream session cookie: the public sites must never hand one out.
            self.send_header("Set-Cookie", "session=upstream; HttpOnly")
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.do_GET()

        do_PUT = do_DELETE = do_PATCH = do_POST  # noqa: N815 (http.server names the handlers)

    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()

    prefix = tmp_path_factory.mktemp("viewer-edges")
    for folder in ("conf.d", "tls", "logs", "tmp", "dashboard", "docs", "data"):
        (prefix / folder).mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", prefix / "tls" / "tls.key", "-out", prefix / "tls" / "tls.crt"],
        check=True, capture_output=True,
    )  # fmt: skip
    port = _free_port()
    values = {
        "NGINX_PUBLIC_LISTEN": f"127.0.0.1:{port}",
        "NGINX_ADMIN_LISTEN": f"127.0.0.1:{_free_port()}",
        "NGINX_PUBLIC_SERVER_NAME": "localhost",
        "NGINX_ADMIN_SERVER_NAME": "localhost",
        "NGINX_ADMIN_NETWORKS": "127.0.0.1 1;",
        "NGINX_AIRFLOW_UPSTREAM": f"http://127.0.0.1:{upstream.server_port}",
        "NGINX_TLS_CERT": "tls/tls.crt",
        "NGINX_TLS_KEY": "tls/tls.key",
        "NGINX_TLS_CHAIN": "tls/tls.crt",
        "NGINX_OCSP_STAPLING": "off",
        "NGINX_LOCAL_RESOLVERS": nginx_render.local_resolvers(),
        "NGINX_DASHBOARD_DIR": str(prefix / "dashboard"),
        "NGINX_DOCS_DIR": str(prefix / "docs"),
        "NGINX_DATA_DIR": str(prefix / "data"),
        "NGINX_PUBLIC_RATE": "1000r/s",
        "NGINX_PUBLIC_BURST": "1000",
        "NGINX_PUBLIC_ASSET_RATE": "1000r/s",
        "NGINX_PUBLIC_ASSET_BURST": "1000",
        "NGINX_PUBLIC_CONNECTIONS": "64",
    }
    bi_port = _free_port()
    values |= {
        "NGINX_BI_PUBLIC_LISTEN": f"127.0.0.1:{bi_port}",
        "NGINX_BI_ADMIN_LISTEN": f"127.0.0.1:{_free_port()}",
        "NGINX_BI_PUBLIC_SERVER_NAME": "localhost",
        "NGINX_BI_ADMIN_SERVER_NAME": "localhost",
        "NGINX_SUPERSET_UPSTREAM": f"http://127.0.0.1:{upstream.server_port}",
        "NGINX_BI_HOME": "/superset/dashboard/user-activity/",
    }
    for name in ("airflow-viewer", "superset"):
        template = (ROOT / "nginx" / "templates" / f"{name}.conf.template").read_text()
        (prefix / "conf.d" / f"{name}.conf").write_text(nginx_render.render(template, values))
    shutil.copy(ROOT / "nginx" / "local" / "nginx.conf", prefix / "nginx.conf")
    command = ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
    if os.geteuid() == 0:
        command += ["-g", "user root;"]
    nginx = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert nginx.poll() is None, nginx.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.2)
    try:
        yield Viewer(port, prefix, recorder, bi_port)
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        upstream.shutdown()
        upstream.server_close()


def test_a_runs_wait_stream_and_admin_reads_are_refused_publicly(viewer: Viewer) -> None:
    refused = [
        "/api/v2/dags/events_ingest/dagRuns/manual__1/wait?interval=0.0001",
        "/api/v2/eventLogs",
        "/api/v2/eventLogs/1",
        "/api/v2/version",
        "/api/v2/importErrors",
    ]
    for path in refused:
        assert viewer.get(path)[0] == 403, path
    assert viewer.get("/api/v2/dags")[0] == 200  # the viewer still reads
    assert not set(viewer.upstream.paths()) & set(refused)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v2/dags/../variables",
        "/api/v2/dags/%2e%2e/variables",
        "/api/v2/dags/%2E%2E/connections",
        "/api/v2/dags/..%2fvariables/key",
        "/api/v2/dags/..%252fpools",
        "/api/v2/dags/%252e%252e/variables",
        "/api/v2/dags/x/..",
        "/api/v2/dags/..;/variables",
    ],
)
def test_dot_dot_segments_never_reach_the_upstream(viewer: Viewer, path: str) -> None:
    before = len(viewer.upstream.seen)
    status, _ = viewer.get(path)
    assert status in (400, 403), (path, status)
    assert len(viewer.upstream.seen) == before, (
        f"{path} reached the upstream as {viewer.upstream.seen[-1][0]}"
    )


def test_what_a_client_says_about_itself_is_not_forwarded(viewer: Viewer) -> None:
    status, _ = viewer.get(
        "/api/v2/dags?limit=1",
        {
            "X-Forwarded-For": "6.6.6.6",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "X-Real-IP": "6.6.6.6",
        },
    )
    assert status == 200
    path, headers = viewer.upstream.seen[-1]
    assert path == "/api/v2/dags?limit=1"
    assert headers.get("x-forwarded-for") == "127.0.0.1" and headers.get("x-real-ip") == "127.0.0.1"
    assert "upgrade" not in headers and "upgrade" not in headers.get("connection", "").lower()
    assert "authorization" not in headers and "cookie" not in headers


def test_an_unread_public_response_is_not_spooled_to_disk(viewer: Viewer) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    raw = context.wrap_socket(
        socket.create_connection(("127.0.0.1", viewer.port)), server_hostname="localhost"
    )
    try:
        raw.sendall(b"GET /api/v2/dags/big HTTP/1.1\r\nHost: localhost\r\n\r\n")
        raw.recv(1024)  # the headers and a little body; the rest stays unread
        time.sleep(2)
        # nginx unlinks a buffer file as soon as it opens it: look for it among open files.
        spooled = []
        for fd in Path("/proc").glob("[0-9]*/fd/*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith(str(viewer.prefix / "tmp")):
                spooled.append(target)
        assert not spooled, spooled
    finally:
        raw.close()


def test_an_unpublished_dashboard_says_why_instead_of_403(viewer: Viewer) -> None:
    """Before dbt_transform's first publish the folder is empty: the page explains, never a bare 403."""
    page = viewer.prefix / "dashboard" / "index.html"
    page.unlink(missing_ok=True)
    for path in ("/dashboard/", "/dashboard/index.html"):
        status, body = viewer.get(path)
        text = body.decode()
        assert status == 404, (path, status, text)
        assert "not been published yet" in text and "dbt_transform" in text, text
        assert "/dags/dbt_transform" in text  # where to follow the run that will publish it
    page.write_text("<!doctype html><title>dashboard</title><p>published")
    try:
        assert viewer.get("/dashboard/") == (200, page.read_bytes())
    finally:
        page.unlink()
    # Anything else under /dashboard/ that does not exist is a plain not-found, never a listing.
    status, _ = viewer.get("/dashboard/missing.png")
    assert status == 404


# --- Superset's public site (nginx/templates/superset.conf.template) ----------------


def test_superset_public_site_forwards_reads_and_chart_data_only_without_credentials(viewer: Viewer) -> None:
    def through(method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, str], bool]:
        before = len(viewer.upstream.seen)
        credentials = {"Cookie": "session=stolen", "Authorization": "Bearer stolen"}
        status, headers, _ = viewer.send(method, path, credentials, body, port=viewer.bi_port)
        return status, headers, len(viewer.upstream.seen) > before

    # Reads and chart-data queries reach Superset, as the anonymous public: no credential
    # goes up, no session cookie comes back.
    for method, path in (("GET", "/api/v1/chart/1"), ("POST", "/api/v1/chart/data"), ("GET", "/static/a.js")):
        status, headers, forwarded = through(method, path, b"{}" if method == "POST" else None)
        assert (status, forwarded) == (200, True), (method, path, status)
        assert "set-cookie" not in headers, (method, path)
        sent = viewer.upstream.seen[-1][1]
        assert "cookie" not in sent and "authorization" not in sent, (method, path)
    # Every other method and every path outside the public site stops at nginx.
    for method, path in (
        ("PUT", "/api/v1/chart/1"), ("DELETE", "/api/v1/chart/1"), ("POST", "/api/v1/dashboard/"),
        ("PATCH", "/api/v1/dashboard/1"), ("POST", "/api/v1/sqllab/execute/"),
        ("POST", "/api/v1/dashboard/1/filter_state"), ("POST", "/login/"), ("GET", "/sqllab/"),
        ("GET", "/api/v1/database/"), ("GET", "/api/v1/security/csrf_token/"), ("GET", "/explore/"),
        ("GET", "/api/v1/chart/..%2f..%2fdatabase/"),
    ):  # fmt: skip
        status, _, forwarded = through(method, path, b"{}" if method != "GET" else None)
        assert status in (400, 403) and not forwarded, (method, path, status)
    # The UI's event log is answered by nginx: a visitor writes nothing, and sees no error.
    status, _, forwarded = through("POST", "/superset/log/?explode=events", b"{}")
    assert (status, forwarded) == (204, False)
    # Dashboards are shown standalone, the visitor's own parameters kept.
    status, headers, forwarded = through("GET", "/superset/dashboard/user-activity/?native_filters_key=k")
    assert status == 302 and not forwarded
    assert headers["location"].endswith(
        "/superset/dashboard/user-activity/?standalone=1&native_filters_key=k"
    )
    assert through("GET", "/superset/dashboard/user-activity/?standalone=1")[::2] == (200, True)
    status, headers, _ = through("GET", "/")
    assert status == 302 and headers["location"].endswith("/superset/dashboard/user-activity/")


# --- the template as each environment renders it ----------------------------------


def test_nginx_t_passes_for_every_environments_render(tmp_path: Path) -> None:
    """The chart's rendered template and variables, substituted as the image does, pass `nginx -t`."""
    from test_platform_chart import render as render_chart

    for env in ("sandbox", "staging", "prod"):
        objects = render_chart(env)
        template = next(o for o in objects if o["metadata"]["name"] == "viewer-nginx-template")
        deployment = next(
            o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "viewer"
        )
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        variables = {e["name"]: e["value"] for e in container["env"]}
        assert variables["NGINX_ENVSUBST_FILTER"] == "^NGINX_"
        variables["NGINX_LOCAL_RESOLVERS"] = nginx_render.local_resolvers()  # as the entrypoint computes it
        prefix = tmp_path / env
        (prefix / "conf.d").mkdir(parents=True)
        (prefix / "tls").mkdir()
        for name, text in template["data"].items():
            (prefix / "conf.d" / name.removesuffix(".template")).write_text(
                nginx_render.render(text, variables)
            )
        subprocess.run(
            [
                *(
                    "openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=test",
                ),
                *("-keyout", prefix / "tls" / "tls.key", "-out", prefix / "tls" / "tls.crt"),
            ],
            check=True,
            capture_output=True,
        )
        shutil.copy(prefix / "tls" / "tls.crt", prefix / "tls" / "ca.crt")
        main = (ROOT / "nginx" / "local" / "nginx.conf").read_text()
        (prefix / "nginx.conf").write_text(main)
        for folder in ("logs", "tmp"):
            (prefix / folder).mkdir()
        checked = subprocess.run(
            ["nginx", "-t", "-p", prefix, "-c", prefix / "nginx.conf"]
            + (["-g", "user root;"] if os.geteuid() == 0 else []),
            capture_output=True,
            text=True,
        )
        assert checked.returncode == 0, f"{env}: {checked.stderr}"
        assert "test is successful" in checked.stderr


def test_the_renderer_refuses_a_placeholder_without_a_value() -> None:
    with pytest.raises(ValueError, match="NGINX_PUBLIC_LISTEN"):
        nginx_render.render("listen ${NGINX_PUBLIC_LISTEN};", {})
    with pytest.raises(ValueError, match="not \\$NGINX_X"):
        nginx_render.render("listen $NGINX_X;", {"NGINX_X": "1"})
    assert (
        nginx_render.render("proxy_pass $upstream; ${NGINX_A}", {"NGINX_A": "a"}) == "proxy_pass $upstream; a"
    )


PUBLICATION = "20261205T060000Z-0123abcd"


def _publish_files(prefix: Path) -> dict[str, bytes]:
    """Files as publish-docs and publish-data lay them out, with a publisher's leftovers beside them."""
    files = {
        "docs/index.html": b'<!doctype html><script src="assets/0a1b.js"></script>',
        "docs/assets/0a1b.js": b"console.log(1)",
        "docs/manifest.json": b'{"nodes": {}}',
        "docs/.publish.lock": b"",
        "data/v1/catalog.json": b'{"publication": "' + PUBLICATION.encode() + b'"}',
        "data/v1/openapi.json": b'{"openapi": "3.1.0"}',
        "data/v1/catalog.schema.json": b"{}",
        f"data/v1/publications/{PUBLICATION}/growth_accounting_weekly.parquet": b"PAR1....PAR1",
        f"data/v1/publications/{PUBLICATION}/growth_accounting_weekly.csv": b"period_start,active_users\n",
        f"data/v1/publications/{PUBLICATION}/.growth_accounting_weekly.json.77.tmp": b"[{",
        "data/v1/.publish.lock": b"",
        "data/v1/notes.txt": b"not an exported path",
    }
    for name, content in files.items():
        (prefix / name).parent.mkdir(parents=True, exist_ok=True)
        (prefix / name).write_bytes(content)
    return files


def test_docs_and_data_answer_get_and_head_with_their_caching_cors_and_csp(viewer: Viewer) -> None:
    files = _publish_files(viewer.prefix)
    cases = {
        "/docs/": ("text/html", "no-cache", "script-src 'self';"),
        "/docs/assets/0a1b.js": (
            "application/javascript",
            "public, max-age=31536000, immutable",
            "script-src 'self';",
        ),
        "/data/v1/catalog.json": ("application/json", "no-cache", "default-src 'none';"),
        f"/data/v1/publications/{PUBLICATION}/growth_accounting_weekly.parquet": (
            "application/vnd.apache.parquet",
            "public, max-age=31536000, immutable",
            "default-src 'none';",
        ),
    }
    for path, (content_type, cache, csp) in cases.items():
        status, headers, body = viewer.send("GET", path)
        assert status == 200, (path, status, body)
        key = "docs/index.html" if path == "/docs/" else path.lstrip("/")
        assert body == files[key]
        assert headers["content-type"].startswith(content_type), (path, headers)
        assert headers["cache-control"] == cache, (path, headers)
        assert (
            csp in headers["content-security-policy"]
            and "'unsafe-inline'"
            not in headers["content-security-policy"].split("script-src")[-1].split(";")[0]
        )
        assert headers["etag"] and headers["last-modified"], path
        assert headers["x-content-type-options"] == "nosniff"
        public = path.startswith("/data/")
        assert (headers.get("access-control-allow-origin") == "*") is public, (path, headers)
        assert ("etag" in headers.get("access-control-expose-headers", "").lower()) is public
        assert (headers.get("cross-origin-resource-policy") == "cross-origin") is public
        head_status, head_headers, head_body = viewer.send("HEAD", path)
        assert head_status == 200 and head_body == b"" and head_headers["etag"] == headers["etag"]
        # Conditional GET: 304 on the ETag and on the date, the body not sent again.
        for condition in (
            {"If-None-Match": headers["etag"]},
            {"If-Modified-Since": headers["last-modified"]},
        ):
            again, _, again_body = viewer.send("GET", path, condition)
            assert again == 304 and again_body == b"", (path, condition)
    # The dashboard keeps its own CSP and no CORS.
    _, dashboard, _ = viewer.send("GET", "/dashboard/")
    assert (
        "access-control-allow-origin" not in dashboard
        and "script-src" not in dashboard["content-security-policy"]
    )
    # A range, as DuckDB or Arrow in a browser reads Parquet.
    status, headers, body = viewer.send(
        "GET", f"/data/v1/publications/{PUBLICATION}/growth_accounting_weekly.parquet", {"Range": "bytes=0-3"}
    )
    assert status == 206 and body == b"PAR1" and headers["content-range"].startswith("bytes 0-3/")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "MKCOL"])
def test_docs_and_data_refuse_every_other_method(viewer: Viewer, method: str) -> None:
    _publish_files(viewer.prefix)
    for path in ("/docs/", "/docs/manifest.json", "/data/v1/catalog.json", "/data/v1/openapi.json"):
        status, _, _ = viewer.send(method, path, body=b"{}" if method != "OPTIONS" else None)
        assert status == 403, (method, path, status)
    assert (viewer.prefix / "data" / "v1" / "catalog.json").read_bytes().startswith(b'{"publication"')


def test_no_folder_is_listed_and_nothing_hidden_or_unnamed_is_served(viewer: Viewer) -> None:
    _publish_files(viewer.prefix)
    for path in (
        "/data/",
        "/data/v1/",
        "/data/v1/publications/",
        f"/data/v1/publications/{PUBLICATION}/",
        "/docs/assets/",
        "/docs/.publish.lock",
        "/data/v1/.publish.lock",
        f"/data/v1/publications/{PUBLICATION}/.growth_accounting_weekly.json.77.tmp",
        "/data/v1/notes.txt",
        "/data/v2/catalog.json",
        "/data/v1/publications/../catalog.json",
        "/data/v1/publications/%2e%2e/catalog.json",
        f"/data/v1/publications/{PUBLICATION}/growth_accounting_weekly.parquet/",
    ):
        status, _, body = viewer.send("GET", path)
        assert status in (400, 404), (path, status)
        assert b"Index of" not in body and b"growth_accounting_weekly" not in body, path
    # An unpublished site says so, never a bare 403.
    shutil.rmtree(viewer.prefix / "docs")
    status, _, body = viewer.send("GET", "/docs/")
    assert status == 404 and b"dbt_transform" in body
