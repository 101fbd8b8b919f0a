"""The REST client against real HTTP servers that page and fail the way APIs do."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from extract_load.sources.http import Auth, Pagination, RateLimiter, RestClient

Answer = tuple[int, dict[str, str], Any]  # status, headers, JSON body (or "DROP" to cut the connection)


@contextmanager
def http_server(
    answer: Callable[[dict[str, str], dict[str, str], int], Answer],
) -> Iterator[tuple[str, list]]:
    """Serves answer(query, headers, request_number); records (time, query, headers) of each request."""
    seen: list[tuple[float, dict[str, str], dict[str, str]]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            query = {k: v[-1] for k, v in parse_qs(urlparse(self.path).query).items()}
            headers = dict(self.headers.items())
            with lock:
                seen.append((time.monotonic(), query, headers))
                number = len(seen)
            status, extra, body = answer(query, headers, number)
            if body == "DROP":
                self.connection.shutdown(socket.SHUT_RDWR)  # no response at all
                return
            payload = json.dumps(body).encode()
            self.send_response(status)
            for key, value in extra.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()


def scripted(script: list[Answer]) -> Callable[[dict, dict, int], Answer]:
    def answer(query: dict, headers: dict, number: int) -> Answer:
        if number <= len(script):
            return script[number - 1]
        return 200, {}, {"data": [{"n": number}], "next_cursor": None}

    return answer


FAST = {"max_backoff_seconds": 0.05, "backoff_seconds": 0.01}


def test_retries_429_5xx_and_dropped_connections_then_succeeds() -> None:
    script = [(503, {}, {}), (429, {}, {}), (200, {}, "DROP"), (502, {}, {})]
    with http_server(scripted(script)) as (url, seen), RestClient(url, max_attempts=6, **FAST) as client:
        body = client.get_json("/v1/events")
    assert len(seen) == 5 and body["data"] == [{"n": 5}]


def test_retry_after_is_honoured() -> None:
    with (
        http_server(scripted([(429, {"Retry-After": "1"}, {})])) as (url, seen),
        RestClient(url, max_attempts=3, **FAST) as client,
    ):
        client.get_json("/v1/events")
    assert len(seen) == 2
    assert seen[1][0] - seen[0][0] >= 0.95, "the client must wait as long as Retry-After says"


def test_client_errors_are_not_retried_and_exhausted_retries_fail_loudly() -> None:
    with (
        http_server(scripted([(404, {}, {"error": "no"})])) as (url, seen),
        RestClient(url, max_attempts=5, **FAST) as client,
        pytest.raises(requests.HTTPError, match="404"),
    ):
        client.get_json("/v1/events")
    assert len(seen) == 1
    with (
        http_server(scripted([(500, {}, {})] * 10)) as (url, seen),
        RestClient(url, max_attempts=3, **FAST) as client,
        pytest.raises(requests.HTTPError, match="500"),
    ):
        client.get_json("/v1/events")
    assert len(seen) == 3


def test_gives_up_after_max_attempts_on_refused_connections() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but never listening: connections are refused
        with (
            RestClient(f"http://127.0.0.1:{port}", max_attempts=3, **FAST) as client,
            pytest.raises(requests.ConnectionError),
        ):
            client.get_json("/v1/events")


ROWS = [{"id": i} for i in range(23)]


def paging_api(query: dict[str, str], headers: dict[str, str], number: int) -> Answer:
    """One dataset, three ways to page through it."""
    if "page" in query:
        size, page = int(query["per_page"]), int(query["page"])
        return 200, {}, {"items": ROWS[(page - 1) * size : page * size]}
    if "offset" in query:
        offset, limit = int(query["offset"]), int(query["limit"])
        return 200, {}, {"items": ROWS[offset : offset + limit], "total": len(ROWS)}
    start, size = int(query.get("cursor", 0)), int(query["limit"])
    nxt = start + size if start + size < len(ROWS) else None
    return 200, {}, {"items": ROWS[start : start + size], "next": nxt}


@pytest.mark.parametrize(
    "pagination",
    [
        Pagination(style="cursor", cursor_path="next", cursor_param="cursor", page_size=5),
        Pagination(style="page", page_param="page", limit_param="per_page", page_size=5),
        Pagination(style="offset", page_size=5, total_path="total"),
    ],
    ids=["cursor", "page", "offset"],
)
def test_every_pagination_style_returns_every_row_once(pagination: Pagination) -> None:
    with http_server(paging_api) as (url, _), RestClient(url, **FAST) as client:
        pages = list(client.pages("/items", {}, pagination, data_selector="items"))
    assert [row for page, _ in pages for row in page] == ROWS
    assert pages[-1][1] is None and all(state is not None for _, state in pages[:-1])


@pytest.mark.parametrize("style", ["cursor", "page", "offset"])
def test_resume_state_continues_where_it_stopped(style: str) -> None:
    pagination = {
        "cursor": Pagination(style="cursor", cursor_path="next", cursor_param="cursor", page_size=5),
        "page": Pagination(style="page", page_param="page", limit_param="per_page", page_size=5),
        "offset": Pagination(style="offset", page_size=5, total_path="total"),
    }[style]
    with http_server(paging_api) as (url, _), RestClient(url, **FAST) as client:
        first_two, resume = [], None
        for page, next_state in client.pages("/items", {}, pagination, data_selector="items"):
            first_two.append(page)
            resume = next_state
            if len(first_two) == 2:
                break
        rest = [page for page, _ in client.pages("/items", {}, pagination, "items", state=resume)]
    assert [row for page in first_two + rest for row in page] == ROWS


def test_credentials_go_in_headers_not_urls() -> None:
    with http_server(scripted([])) as (url, seen):
        with RestClient(url, auth=Auth(kind="bearer", secret="tok-1"), **FAST) as client:
            list(client.pages("/v1/events", {}, Pagination()))
        with RestClient(url, auth=Auth(kind="api_key", secret="key-2", name="X-Key"), **FAST) as client:
            client.get_json("/v1/events")
    assert seen[0][2]["Authorization"] == "Bearer tok-1"
    assert seen[1][2]["X-Key"] == "key-2"
    assert "tok-1" not in repr(Auth(kind="bearer", secret="tok-1"))  # pragma: allowlist secret


def test_rate_limiter_spaces_requests() -> None:
    limiter = RateLimiter(per_second=20)
    started = time.monotonic()
    for _ in range(5):
        limiter.wait()
    assert time.monotonic() - started >= 4 / 20 * 0.9
