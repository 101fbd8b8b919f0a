"""No secret a source reads ever leaves the process in text (issue 20, item 9).

Task logs are public through the viewer and manifests are kept 400 days: an
API key sent as a query parameter used to appear in retry warnings, error
text and `sources check`, and a signed URL in every manifest and traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

API_KEY = "k3y-that-must-never-be-logged"  # pragma: allowlist secret
SIGNATURE = "5ignature0f4signedUrl"  # pragma: allowlist secret


@contextmanager
def flaky_api(failures: int) -> Iterator[str]:
    """An events API that answers 503 `failures` times, then one page; a CSV drop at /drop.csv."""
    count = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith("/drop.csv"):
                body = b"event_time,user_id,event_type\n2025-03-05 10:00:00,u_1,like\n"
                status = 200 if "missing" not in self.path else 404
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            count["n"] += 1
            if count["n"] <= failures:
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            payload = json.dumps(
                {"data": [{"event_time": "2025-03-05 10:00:00", "user_id": "u_1", "event_type": "like"}],
                 "next_cursor": None}
            ).encode()  # fmt: skip
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


SOURCES = """
sources:
  keyed:
    kind: rest
    base_url_env: KEYED_API_URL
    path: /v1/events
    params: {start: "{start}T00:00:00", end: "{end}T00:00:00"}
    data_selector: data
    pagination: {style: cursor, cursor_path: next_cursor, cursor_param: cursor, page_size: 10}
    auth: {kind: api_key, location: query, name: api_key, secret_env: KEYED_API_KEY}
  drop:
    kind: file
    location_env: DROP_LOCATION
"""


def run(tmp_path: Path, *args: str, **env: str) -> tuple[int, str]:
    sources = tmp_path / "sources.yaml"
    sources.write_text(SOURCES)
    done = subprocess.run(
        [sys.executable, "-m", "extract_load.cli", "--log-level", "DEBUG", *args],
        env={**os.environ, "SOURCES_FILE": str(sources), "KEYED_API_KEY": API_KEY,
             "METRICS_FILE": str(tmp_path / "metrics.prom"), **env},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def everything_written(tmp_path: Path, output: str) -> str:
    files = [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".gz"]
    return output + "\n".join(files)


def test_an_api_key_in_the_query_is_never_logged_nor_stored(tmp_path: Path) -> None:
    extract = ("extract", "--source", "keyed", "--bucket", str(tmp_path / "bucket"))
    with flaky_api(failures=2) as url:
        code, output = run(tmp_path, *extract, "--start", "2025-03-05", KEYED_API_URL=url)
        assert code == 0, output
        refused = url.rsplit(":", 1)[0] + ":1"  # nothing listens there: urllib3 warns with the URL
        code, failed = run(
            tmp_path, *extract, "--start", "2025-03-06", "--max-attempts", "2", KEYED_API_URL=refused
        )
        assert code != 0 and "Retrying" in failed  # the retry was logged ...
        code, checked = run(tmp_path, "sources", "check", "keyed", KEYED_API_URL=url + "/nowhere")
    text = everything_written(tmp_path, output + failed + checked)
    assert API_KEY not in text  # ... without the key
    assert "[redacted]" in text or "api_key" not in text


def test_a_signed_url_is_kept_out_of_manifests_errors_and_results(tmp_path: Path) -> None:
    bucket = tmp_path / "bucket"
    with flaky_api(failures=0) as url:
        signed = f"{url}/drop.csv?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Signature={SIGNATURE}"
        extract = ("extract", "--source", "drop", "--start", "2025-03-05", "--bucket", str(bucket))
        code, output = run(tmp_path, *extract, DROP_LOCATION=signed)
        assert code == 0, output
        missing = signed.replace("drop.csv", "drop.csv/missing")
        code, failed = run(tmp_path, "extract-file", "--path", missing, "--bucket", str(bucket))
        assert code != 0
    manifest = json.loads(next(bucket.rglob("_manifest.json")).read_text())
    assert manifest["origin"].startswith(f"{url}/drop.csv#sha256=")
    assert SIGNATURE not in everything_written(tmp_path, output + failed)
