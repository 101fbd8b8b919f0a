"""Task defaults every DAG shares: one owner, retries with backoff, a timeout, a failure alert."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pipeline_runtime.alerts import notify_failure

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "data-platform",
    "retries": 2,
    "retry_delay": dt.timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=10),
    "execution_timeout": dt.timedelta(minutes=30),
    "on_failure_callback": notify_failure,
}
