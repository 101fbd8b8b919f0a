"""REST extraction on dlt's RESTClient: pagination styles and auth from dlt,
transport policy (timeouts, retries with jitter, Retry-After, rate limit) from
a requests session we control.

dlt's paginators cover cursor, page-number and offset APIs, and its auth
classes keep credentials out of URLs and logs. Its built-in retry has no
jitter, so the session retries through urllib3's Retry instead: exponential
backoff with jitter so parallel extracts do not retry in lockstep, on 429, 5xx
and dropped connections, and a server's Retry-After always wins.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import requests
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import APIKeyAuth, BearerTokenAuth
from dlt.sources.helpers.rest_client.paginators import (
    BasePaginator,
    JSONResponseCursorPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    SinglePagePaginator,
)
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

log = logging.getLogger(__name__)
logging.getLogger("dlt").setLevel(logging.WARNING)

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


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


class _PolicyAdapter(HTTPAdapter):
    """Applies the rate limit and a default timeout to every request it sends."""

    def __init__(self, retry: Retry, limiter: RateLimiter, timeout: float) -> None:
        super().__init__(max_retries=retry)
        self._limiter = limiter
        self._timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        self._limiter.wait()
        return super().send(request, **kwargs)


def make_session(
    timeout_seconds: float = 30.0,
    max_attempts: int = 6,
    backoff_seconds: float = 0.5,
    max_backoff_seconds: float = 60.0,
    requests_per_second: float | None = None,
) -> requests.Session:
    retry = Retry(
        total=max_attempts - 1,
        backoff_factor=backoff_seconds,
        backoff_jitter=backoff_seconds,
        backoff_max=max_backoff_seconds,
        status_forcelist=RETRYABLE_STATUS,
        allowed_methods=frozenset({"GET", "HEAD"}),
        respect_retry_after_header=True,
        raise_on_status=False,  # the last answer reaches raise_for_status with its body
    )
    session = requests.Session()
    adapter = _PolicyAdapter(retry, RateLimiter(requests_per_second), timeout_seconds)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "extract-load"
    return session


@dataclass(frozen=True)
class Pagination:
    """How an API pages. `state` resumes a paginator where a checkpoint left it."""

    style: Literal["cursor", "page", "offset", "single"] = "cursor"
    cursor_path: str = "next_cursor"
    cursor_param: str = "cursor"
    page_param: str = "page"
    first_page: int = 1
    offset_param: str = "offset"
    limit_param: str = "limit"
    page_size: int = 1000
    total_path: str | None = None

    def paginator(self, state: dict[str, Any] | None = None) -> BasePaginator:
        state = state or {}
        if self.style == "cursor":
            return JSONResponseCursorPaginator(cursor_path=self.cursor_path, cursor_param=self.cursor_param)
        if self.style == "page":
            return PageNumberPaginator(
                base_page=self.first_page,
                page=state.get("page", self.first_page),
                page_param=self.page_param,
                total_path=self.total_path,
                stop_after_empty_page=True,
            )
        if self.style == "offset":
            return OffsetPaginator(
                limit=self.page_size,
                offset=state.get("offset", 0),
                offset_param=self.offset_param,
                limit_param=self.limit_param,
                total_path=self.total_path,
                stop_after_empty_page=True,
            )
        return SinglePagePaginator()

    def initial_params(self, state: dict[str, Any] | None) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.style in ("cursor", "page"):
            params[self.limit_param] = self.page_size
        if self.style == "cursor" and state and state.get("cursor"):
            params[self.cursor_param] = state["cursor"]
        return params

    def state_after(self, paginator: BasePaginator) -> dict[str, Any] | None:
        """Where the next request would start, or None when the API has no more pages."""
        if isinstance(paginator, SinglePagePaginator) or not paginator.has_next_page:
            return None
        if isinstance(paginator, JSONResponseCursorPaginator):
            cursor = paginator._next_reference
            return {"cursor": cursor} if cursor else None
        return {self.style: paginator.current_value}  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Auth:
    """Credentials by reference: the secret itself is passed in, never configured."""

    kind: Literal["none", "bearer", "api_key"] = "none"
    secret: str | None = field(default=None, repr=False)
    name: str = "X-API-Key"
    location: Literal["header", "query"] = "header"

    def dlt_auth(self) -> BearerTokenAuth | APIKeyAuth | None:
        if self.kind == "none" or not self.secret:
            return None
        if self.kind == "bearer":
            return BearerTokenAuth(token=self.secret)
        return APIKeyAuth(name=self.name, api_key=self.secret, location=self.location)


@dataclass
class RestClient:
    """A JSON API client: dlt pagination and auth over our transport policy."""

    base_url: str
    auth: Auth = field(default_factory=Auth)
    timeout_seconds: float = 30.0
    max_attempts: int = 6
    max_backoff_seconds: float = 60.0
    requests_per_second: float | None = None
    backoff_seconds: float = 0.5

    def __post_init__(self) -> None:
        self.session = make_session(
            self.timeout_seconds,
            self.max_attempts,
            self.backoff_seconds,
            self.max_backoff_seconds,
            self.requests_per_second,
        )

    def pages(
        self,
        path: str,
        params: dict[str, Any],
        pagination: Pagination,
        data_selector: str | None = "data",
        state: dict[str, Any] | None = None,
    ) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any] | None]]:
        """Yield (records, resume state after this page); the state is None on the last page."""
        client = RESTClient(base_url=self.base_url, auth=self.auth.dlt_auth(), session=self.session)
        query = {**params, **pagination.initial_params(state)}
        pages = client.paginate(
            path, params=query, paginator=pagination.paginator(state), data_selector=data_selector
        )
        for page in pages:
            # page.paginator is the live one: dlt has already advanced it to the next request.
            yield list(page), pagination.state_after(page.paginator)

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        response = self.session.get(
            self.base_url.rstrip("/") + path, params=params, auth=self.auth.dlt_auth()
        )
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
