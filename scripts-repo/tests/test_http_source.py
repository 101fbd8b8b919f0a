"""Retries against a real HTTP server that fails the way busy APIs do."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from extract_load.http_source import RateLimiter, RestClient


@contextmanager
def scripted_server(script: list[tuple[int, dict[str, str]]]) -> Iterator[tuple[str, list[float]]]:
    """Answers requests with the scripted (status, headers) in turn, then 200."""
    seen: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(time.monotonic())
            status, headers = script[len(seen) - 1] if len(seen) <= len(script) else (200, {})
            body = json.dumps({"data": [{"n": len(seen)}], "next_cursor": None}).encode()
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_retries_429_and_5xx_then_succeeds() -> None:
    with (
        scripted_server([(503, {}), (429, {}), (502, {})]) as (url, seen),
        RestClient(url, max_attempts=5, max_backoff_seconds=0.05) as client,
    ):
        body = client.get_json("/v1/events", {})
    assert len(seen) == 4 and body["data"] == [{"n": 4}]


def test_retry_after_is_honoured() -> None:
    with (
        scripted_server([(429, {"Retry-After": "1"})]) as (url, seen),
        RestClient(url, max_attempts=3, max_backoff_seconds=0.01) as client,
    ):
        client.get_json("/v1/events", {})
    assert len(seen) == 2
    assert seen[1] - seen[0] >= 0.95, "the client must wait as long as Retry-After says"


def test_client_errors_are_not_retried() -> None:
    with (
        scripted_server([(404, {})]) as (url, seen),
        RestClient(url, max_attempts=5, max_backoff_seconds=0.01) as client,
        pytest.raises(httpx.HTTPStatusError),
    ):
        client.get_json("/v1/events", {})
    assert len(seen) == 1


def test_gives_up_after_max_attempts_on_refused_connections() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but never listening: connections are refused
        with (
            RestClient(f"http://127.0.0.1:{port}", max_attempts=3, max_backoff_seconds=0.01) as client,
            pytest.raises(httpx.ConnectError),
        ):
            client.get_json("/v1/events", {})


def test_rate_limiter_spaces_requests() -> None:
    limiter = RateLimiter(per_second=20)
    started = time.monotonic()
    for _ in range(5):
        limiter.wait()
    assert time.monotonic() - started >= 4 / 20 * 0.9
