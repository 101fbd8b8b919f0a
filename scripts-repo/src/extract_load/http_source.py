"""Paginated REST extraction with timeouts, retries and a client-side rate limit.

Retries cover what a healthy API still does under load: 429 and 5xx answers and
dropped connections. Backoff is exponential with jitter so that parallel
extracts do not retry in lockstep, and a server's Retry-After always wins.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


class RetryableHTTPError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code} from {response.request.url.copy_with(query=None)}")
        self.response = response


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, RetryableHTTPError | httpx.TransportError)


def _retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class _BackoffHonouringRetryAfter(wait_random_exponential):
    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        if outcome is not None and outcome.failed:
            exc = outcome.exception()
            if isinstance(exc, RetryableHTTPError):
                after = _retry_after_seconds(exc.response)
                if after is not None:
                    return after
        return super().__call__(retry_state)


class RateLimiter:
    """At most `per_second` requests per second from this process."""

    def __init__(self, per_second: float | None) -> None:
        self._interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self._interval
        if delay > 0:
            time.sleep(delay)


@dataclass
class RestClient:
    """A JSON API client. The token goes in a header and is never logged."""

    base_url: str
    token: str | None = None
    timeout_seconds: float = 30.0
    max_attempts: int = 6
    max_backoff_seconds: float = 60.0
    requests_per_second: float | None = None

    def __post_init__(self) -> None:
        headers = {"Accept": "application/json", "User-Agent": "extract-load"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=self.timeout_seconds)
        self._limiter = RateLimiter(self.requests_per_second)
        self._get = retry(
            retry=retry_if_exception(_is_retryable),
            wait=_BackoffHonouringRetryAfter(multiplier=0.5, max=self.max_backoff_seconds),
            stop=stop_after_attempt(self.max_attempts),
            reraise=True,
            before_sleep=lambda state: log.warning(
                "attempt %d failed (%s); retrying",
                state.attempt_number,
                state.outcome.exception(),  # type: ignore[union-attr]
            ),
        )(self._get_once)

    def _get_once(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        self._limiter.wait()
        response = self._client.get(path, params=params)
        if response.status_code in RETRYABLE_STATUS:
            raise RetryableHTTPError(response)
        response.raise_for_status()
        return response.json()

    def get_json(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._get(path, params)

    def paginate(
        self, path: str, params: dict[str, Any], page_size: int = 1000
    ) -> Iterator[list[dict[str, Any]]]:
        """Follow `next_cursor` until the API says there is no more."""
        cursor: str | None = None
        while True:
            query = {**params, "limit": page_size}
            if cursor:
                query["cursor"] = cursor
            body = self.get_json(path, query)
            data = body.get("data")
            if not isinstance(data, list):
                raise ValueError(f"{path}: response has no 'data' list")
            yield data
            cursor = body.get("next_cursor")
            if not cursor:
                return

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
