"""Failure alerts reach a real HTTP endpoint (a Slack-style webhook) and never leak the webhook URL."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from pipeline_runtime.alerts import notify_failure


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/services/T000/B000/secret-path", received
    finally:
        server.shutdown()
        server.server_close()


def _context() -> dict:
    ti = SimpleNamespace(
        dag_id="events_ingest", task_id="ingest.load", map_index=3, run_id="r1", try_number=2
    )
    return {"ti": ti, "exception": RuntimeError("scripts command exited with 5")}


def test_a_failure_is_logged_and_posted_to_the_webhook(
    webhook: tuple[str, list[dict]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url, received = webhook
    monkeypatch.setenv("PLATFORM_ALERT_SLACK_WEBHOOK", url)
    monkeypatch.delenv("PLATFORM_ALERT_EMAIL", raising=False)
    with caplog.at_level(logging.INFO):
        notify_failure(_context())
    assert len(received) == 1
    assert "events_ingest.ingest.load" in received[0]["text"] and "exited with 5" in received[0]["text"]
    assert "task failed" in caplog.text and '"map_index": 3' in caplog.text
    assert "secret-path" not in caplog.text  # the webhook is a secret


def test_an_unreachable_channel_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PLATFORM_ALERT_SLACK_WEBHOOK", "http://127.0.0.1:9/unreachable-secret")
    with caplog.at_level(logging.INFO):
        notify_failure(_context())
    assert "Slack alert not delivered" in caplog.text and "unreachable-secret" not in caplog.text


def test_a_missed_deadline_is_logged_and_posted(
    webhook: tuple[str, list[dict]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from pipeline_runtime.alerts import notify_deadline_missed

    url, received = webhook
    monkeypatch.setenv("PLATFORM_ALERT_SLACK_WEBHOOK", url)
    # The context Airflow's scheduler gives a deadline callback: the run as JSON and the deadline.
    context = {
        "dag_run": {"dag_id": "events_ingest", "dag_run_id": "scheduled__2025-03-04", "state": "running"},
        "deadline": {"id": "d1", "deadline_time": "2025-03-05T22:00:00+00:00"},
    }
    with caplog.at_level(logging.INFO):
        notify_deadline_missed(context, what="yesterday's raw events")
    assert len(received) == 1
    text = received[0]["text"]
    assert "events_ingest" in text and "not ready by 2025-03-05T22:00:00+00:00" in text and "running" in text
    assert "deadline missed" in caplog.text
