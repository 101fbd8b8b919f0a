"""A local events API: the stand-in for the app backend the pipeline extracts from.

It serves a generated Parquet stream or an app's CSV export over real HTTP with
the same contract a production events API has: filter by a time interval,
keyset pagination with an opaque cursor, bearer auth when a token is set.
Keyset (not offset) pagination keeps every page O(page) on tens of millions of
rows and never skips or repeats a row when pages are fetched slowly.

Any table with a time column can be served the same way (`--time-column`,
`--resource`): the tutorial's orders API is this server on an orders export.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import duckdb

from extract_load.contract import EVENT_COLUMNS, local_time_sql
from extract_load.names import checked_name, quoted

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 10_000


class SourceError(ValueError):
    """The source file cannot be served without losing rows."""


class EventStore:
    """Events held in an in-memory DuckDB, sorted for keyset pagination."""

    def __init__(self, source: Path, time_column: str = "event_time") -> None:
        checked_name(time_column, "time column")
        self._con = duckdb.connect(":memory:")
        self._con.execute("set timezone = 'UTC'")
        self._lock = threading.Lock()
        self.source = source
        suffix = source.suffix.lower()
        if suffix == ".parquet":
            relation = f"read_parquet('{source}')"
        elif suffix in {".csv", ".gz"}:
            relation = f"read_csv('{source}', header = true, all_varchar = true)"
        else:
            raise SourceError(f"{source}: unsupported source format (use .parquet or .csv)")
        columns = [row[0] for row in self._con.execute(f"describe select * from {relation}").fetchall()]
        required = {"event_time", "user_id", "event_type"} if time_column == "event_time" else {time_column}
        missing = required - set(columns)
        if missing:
            raise SourceError(f"{source}: missing required columns {sorted(missing)}")
        self.columns = columns
        cast_event_time = f"cast({quoted(time_column)} as varchar)"
        self._con.execute(
            f"""
            create table events as
            select
                row_number() over () as _seq,
                {local_time_sql(cast_event_time)} as _ts,
                * replace ({cast_event_time} as {quoted(time_column)})
            from {relation}
            order by _ts, _seq
            """
        )
        bad = self._con.execute(
            f"select _seq, {quoted(time_column)} from events where _ts is null order by _seq limit 5"
        ).fetchall()
        if bad:
            total = self._con.execute("select count(*) from events where _ts is null").fetchone()
            examples = ", ".join(f"row {seq}: {value!r}" for seq, value in bad)
            raise SourceError(
                f"{source}: {total[0] if total else '?'} rows have an {time_column} that no "
                f"supported format parses ({examples}); an API filtered by time cannot serve "
                "them, so it serves nothing rather than lose them. Extract the export as a file "
                "drop instead (`extract-load extract-file`, `make demo EVENTS_CSV=...`), which "
                "quarantines them with their reasons, or add the format to contract.NAIVE_TIME_FORMATS"
            )
        count, first, last = self._con.execute("select count(*), min(_ts), max(_ts) from events").fetchone()  # type: ignore[misc]
        self.row_count = int(count)
        self.first_event_time = first.isoformat(sep=" ") if first else None
        self.last_event_time = last.isoformat(sep=" ") if last else None

    def page(
        self, start: dt.datetime, end: dt.datetime, limit: int, after: tuple[str, int] | None
    ) -> tuple[list[dict[str, Any]], tuple[str, int] | None]:
        where = "_ts >= ? and _ts < ?"
        params: list[Any] = [start, end]
        if after is not None:
            where += " and (_ts > ? or (_ts = ? and _seq > ?))"
            after_ts = dt.datetime.fromisoformat(after[0])
            params += [after_ts, after_ts, after[1]]
        with self._lock:
            cur = self._con.cursor()
        result = cur.execute(
            f"select * from events where {where} order by _ts, _seq limit {limit + 1}", params
        )
        names = [d[0] for d in result.description]
        rows = result.fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        records = []
        for row in rows:
            record = dict(zip(names, row, strict=True))
            records.append({k: _jsonable(v) for k, v in record.items() if not k.startswith("_")})
        cursor = None
        if more and rows:
            last = dict(zip(names, rows[-1], strict=True))
            cursor = (last["_ts"].isoformat(), int(last["_seq"]))
        return records, cursor


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def encode_cursor(cursor: tuple[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode()


def decode_cursor(token: str) -> tuple[str, int]:
    ts, seq = json.loads(base64.urlsafe_b64decode(token.encode()))
    return str(ts), int(seq)


def make_handler(
    store: EventStore, token: str | None, resource: str = "events"
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "events-api"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug("%s " + format, self.address_string(), *args)

        def _send(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body, separators=(",", ":")).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/healthz":
                self._send(
                    HTTPStatus.OK,
                    {
                        "status": "ok",
                        "rows": store.row_count,
                        "first_event_time": store.first_event_time,
                        "last_event_time": store.last_event_time,
                    },
                )
                return
            if url.path != f"/v1/{resource}":
                self._send(HTTPStatus.NOT_FOUND, {"error": "not found"})
                return
            if token is not None:
                sent = self.headers.get("Authorization", "")
                if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
                    self._send(HTTPStatus.UNAUTHORIZED, {"error": "missing or wrong bearer token"})
                    return
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            try:
                start = dt.datetime.fromisoformat(query["start"])
                end = dt.datetime.fromisoformat(query["end"])
                limit = min(int(query.get("limit", 1000)), MAX_PAGE_SIZE)
                after = decode_cursor(query["cursor"]) if query.get("cursor") else None
                if limit < 1 or end <= start:
                    raise ValueError("need limit >= 1 and end > start")
            except (KeyError, ValueError, TypeError) as exc:
                self._send(HTTPStatus.BAD_REQUEST, {"error": f"bad query: {exc}"})
                return
            records, cursor = store.page(start, end, limit, after)
            self._send(
                HTTPStatus.OK,
                {"data": records, "next_cursor": encode_cursor(cursor) if cursor else None},
            )

    return Handler


def serve(
    source: Path,
    host: str,
    port: int,
    token: str | None,
    time_column: str = "event_time",
    resource: str = "events",
) -> ThreadingHTTPServer:
    """Bind the API at /v1/<resource> (port 0 picks a free one); the caller runs serve_forever()."""
    store = EventStore(source, time_column)
    server = ThreadingHTTPServer((host, port), make_handler(store, token, checked_name(resource, "resource")))
    server.daemon_threads = True
    log.info("serving %d events from %s on %s:%d", store.row_count, source, host, server.server_port)
    return server


__all__ = ["EVENT_COLUMNS", "EventStore", "SourceError", "serve"]
