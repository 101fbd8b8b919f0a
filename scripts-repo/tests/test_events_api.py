from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import httpx
import pytest

from extract_load.demo.events_api import EventStore, SourceError
from extract_load.sources.http import Auth, Pagination, RestClient


def _all_pages(url: str, start: str, end: str, page_size: int, token: str | None = None) -> list[list[dict]]:
    auth = Auth(kind="bearer", secret=token) if token else Auth()
    pagination = Pagination(style="cursor", page_size=page_size)
    with RestClient(url, auth=auth, max_attempts=1) as client:
        return [page for page, _ in client.pages("/v1/events", {"start": start, "end": end}, pagination)]


def test_pages_cover_the_interval_exactly_once(small_stream: Path, api) -> None:
    start, end = "2025-03-05T00:00:00", "2025-03-06T00:00:00"
    expected = duckdb.sql(
        f"select count(*) from '{small_stream}' where event_time >= '{start}' and event_time < '{end}'"
    ).fetchone()[0]
    assert expected > 20
    with api(small_stream) as url:
        pages = _all_pages(url, start, end, page_size=7)
    rows = [row for page in pages for row in page]
    assert len(rows) == expected
    assert all(len(page) <= 7 for page in pages) and len(pages) == -(-expected // 7)
    keys = [(r["event_time"], r["user_id"], r["event_type"]) for r in rows]
    assert keys == sorted(keys, key=lambda k: k[0])  # served in time order
    assert all(start <= r["event_time"].replace(" ", "T") < end for r in rows)


def test_bearer_token_is_required_when_configured(small_stream: Path, api) -> None:
    with api(small_stream, token="s3cret-for-test") as url:
        response = httpx.get(f"{url}/v1/events", params={"start": "2025-03-05", "end": "2025-03-06"})
        assert response.status_code == 401
        pages = _all_pages(url, "2025-03-05T00:00:00", "2025-03-06T00:00:00", 1000, token="s3cret-for-test")
        assert sum(len(p) for p in pages) > 0


def test_bad_queries_are_rejected_with_a_reason(small_stream: Path, api) -> None:
    with api(small_stream) as url:
        for params in (
            {"start": "2025-03-05"},
            {"start": "x", "end": "y"},
            {"start": "2025-03-06", "end": "2025-03-05"},
            {"start": "2025-03-05", "end": "2025-03-06", "limit": "0"},
        ):
            response = httpx.get(f"{url}/v1/events", params=params)
            assert response.status_code == 400 and "bad query" in response.json()["error"]
        health = httpx.get(f"{url}/healthz").json()
        assert health["rows"] > 0 and health["first_event_time"].startswith("2025-03-03")


def test_csv_with_unparseable_times_is_refused_not_truncated(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text(
        "event_time,user_id,event_type\n2025-03-07 20:45:15.694746,u_1,like\nyesterday,u_2,like\n"
    )
    with pytest.raises(SourceError, match=r"1 rows have an event_time.*'yesterday'"):
        EventStore(export)


def test_csv_time_formats_and_zones_are_normalised_to_local_time(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text(
        "event_time,user_id,event_type\n"
        "2025-03-07 20:45:15.694746,u_1,like\n"
        "2025-03-07T21:00:00,u_2,share\n"
        "2025-03-07T14:00:00Z,u_3,share\n"
    )
    store = EventStore(export)
    rows, cursor = store.page(dt.datetime(2025, 3, 7), dt.datetime(2025, 3, 8), 10, None)
    assert cursor is None
    assert [r["user_id"] for r in rows] == ["u_1", "u_2", "u_3"]  # 14:00Z is 22:00 local
    assert rows[2]["event_time"] == "2025-03-07T14:00:00Z"  # served as exported


def test_the_public_sample_export_is_served_whole(sample_export: Path) -> None:
    store = EventStore(sample_export)
    assert store.row_count == 10_000
    served = 0
    day = dt.datetime.fromisoformat(store.first_event_time[:10])
    while day <= dt.datetime.fromisoformat(store.last_event_time[:10]):
        cursor = None
        while True:
            rows, cursor = store.page(day, day + dt.timedelta(days=1), 500, cursor)
            served += len(rows)
            if cursor is None:
                break
        day += dt.timedelta(days=1)
    assert served == 10_000
