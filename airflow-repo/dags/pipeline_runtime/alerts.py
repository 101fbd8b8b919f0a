"""Telling people a task failed: always in the log, and to Slack and/or email when configured.

Where alerts go is configuration, never code: `PLATFORM_ALERT_SLACK_WEBHOOK`
(an incoming-webhook URL, a secret: it is never logged) and
`PLATFORM_ALERT_EMAIL` (comma-separated addresses, sent through Airflow's
configured SMTP). With neither set, the structured log line is the alert.
A failing channel is logged and never hides the task's own failure.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any
from urllib.parse import urlparse

from pipeline_runtime.settings import settings

log = logging.getLogger(__name__)


def failure_summary(context: Any) -> dict[str, Any]:
    ti = context["ti"]
    exception = context.get("exception")
    return {
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "map_index": getattr(ti, "map_index", -1),
        "run_id": ti.run_id,
        "try_number": getattr(ti, "try_number", None),
        "error": f"{type(exception).__name__}: {exception}" if exception else "unknown",
    }


def _failure_text(summary: dict[str, Any]) -> str:
    return (
        f":red_circle: *{summary['dag_id']}.{summary['task_id']}* failed "
        f"(run {summary['run_id']}, try {summary['try_number']}): {summary['error'][:500]}"
    )


def post_to_slack(
    webhook: str, summary: dict[str, Any], timeout: float = 10.0, text: str | None = None
) -> None:
    text = text or _failure_text(summary)
    if urlparse(webhook).scheme not in ("https", "http"):
        raise ValueError("the Slack webhook must be an http(s) URL")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        webhook,
        data=json.dumps({"text": text}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
        response.read()


def notify_failure(context: Any) -> None:
    """`on_failure_callback` of every task (pipeline_runtime.defaults)."""
    summary = failure_summary(context)
    log.error("task failed: %s", json.dumps(summary, sort_keys=True))
    _deliver(summary, _failure_text(summary), f"[airflow] {summary['dag_id']}.{summary['task_id']} failed")


def notify_deadline_missed(context: dict[str, Any] | None = None, what: str = "data") -> None:
    """A DAG's deadline alert fired: its data was not ready by the time users rely on it.

    Deadline callbacks get a small context (the DAG run as JSON and the
    deadline), not a task's; so this has its own summary.
    """
    context = context or {}
    run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    summary = {
        "dag_id": run.get("dag_id"),
        "run_id": run.get("dag_run_id") or run.get("run_id"),
        "state": run.get("state"),
        "deadline": str(deadline.get("deadline_time")),
        "what": what,
    }
    log.error("deadline missed: %s", json.dumps(summary, sort_keys=True, default=str))
    text = (
        f":alarm_clock: *{summary['dag_id']}*: {what} not ready by {summary['deadline']} "
        f"(run {summary['run_id']} is {summary['state']})"
    )
    _deliver(summary, text, f"[airflow] {summary['dag_id']}: {what} late")


def _deliver(summary: dict[str, Any], text: str, subject: str) -> None:
    current = settings()
    webhook = current.alert_slack_webhook
    if webhook:
        try:
            post_to_slack(webhook, summary, text=text)
        except (OSError, ValueError) as exc:  # an alert channel must not mask the failure itself
            log.warning("Slack alert not delivered: %s", type(exc).__name__)
    recipients = current.alert_email
    if recipients:
        try:
            from airflow.utils.email import send_email

            send_email(
                to=[r.strip() for r in recipients.split(",") if r.strip()],
                subject=subject,
                html_content=f"<pre>{json.dumps(summary, indent=2, default=str)}</pre>",
            )
        except Exception as exc:  # noqa: BLE001 (SMTP and config errors alike must not mask the failure)
            log.warning("email alert not delivered: %s", type(exc).__name__)
