"""Sheets and Drive through Google's API client, replaying recorded API
responses from a local HTTP server (the endpoint is the only thing changed)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path

import duckdb
import pytest
from openpyxl import Workbook

from extract_load.contract import QuarantinePolicy
from extract_load.intervals import Interval
from extract_load.landing.bucket import LocalBucket
from extract_load.load.duckdb import load_duckdb
from extract_load.sources.sheets import extract_drive_xlsx, extract_sheet, google_service

RECORDED = Path(__file__).parent / "fixtures" / "google"


@contextmanager
def google_apis(xlsx: bytes = b"") -> Iterator[list[str]]:
    """Replays the recorded Sheets response and serves `xlsx` as Drive media; records request paths."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.path)
            if "/values/" in self.path:
                body, kind = (RECORDED / "sheets_values_get.json").read_bytes(), "application/json"
            elif "/files/" in self.path and "alt=media" in self.path:
                body, kind = xlsx, "application/octet-stream"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/"
    saved = {
        k: os.environ.get(k)
        for k in ("GOOGLE_SHEETS_API_ENDPOINT", "GOOGLE_DRIVE_API_ENDPOINT", "GOOGLE_API_ANONYMOUS")
    }
    os.environ.update(GOOGLE_SHEETS_API_ENDPOINT=url, GOOGLE_DRIVE_API_ENDPOINT=url, GOOGLE_API_ANONYMOUS="1")
    try:
        yield seen
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.shutdown()
        server.server_close()


def load_days(bucket: LocalBucket, manifests: list, db: Path) -> tuple[int, int, dict[str, int]]:
    results = [
        load_duckdb(bucket, m.source, Interval.parse(m.interval_start), db, max_quarantine_ratio=1.0)
        for m in manifests
    ]
    with duckdb.connect(str(db), read_only=True) as con:
        reasons = dict(
            con.execute("select reason, count(*) from raw.sheet_events_quarantine group by 1").fetchall()
        )
    return sum(r.loaded for r in results), sum(r.quarantined for r in results), reasons


def test_a_sheet_range_lands_and_reconciles(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    with google_apis() as seen:
        extracted = extract_sheet(
            "sheet-123", "Events!A:J", bucket, None, "sheet_events", google_service("sheets", "v4"),
            policy=QuarantinePolicy(max_ratio=1.0),
        )  # fmt: skip
    manifests = extracted.manifests
    assert "/v4/spreadsheets/sheet-123/values/Events%21A%3AJ" in seen[0]
    assert "valueRenderOption=UNFORMATTED_VALUE" in seen[0]  # pragma: allowlist secret
    assert [m.interval_start for m in manifests] == ["2025-03-05", "2025-03-06"]
    # 5 data rows (the blank row is not data): one has no usable time, the extract quarantines it, and
    # the load of the sheet's first day copies it into the quarantine table beside the load's own.
    assert (extracted.rows_in, extracted.reasons) == (5, {"unparseable_event_time": 1})
    assert sum(m.row_count for m in manifests) == 4
    loaded, quarantined, reasons = load_days(bucket, manifests, tmp_path / "w.duckdb")
    assert (loaded, quarantined) == (3, 2) and loaded + quarantined == extracted.rows_in
    assert reasons == {"missing_user_id": 1, "unparseable_event_time": 1}
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        vip = con.execute("select _record from raw.sheet_events where user_id = 'u_0104'").fetchone()[0]
    assert json.loads(vip)["column_10"] == "vip"  # a cell beyond the header is kept


def test_an_xlsx_in_drive_lands_through_the_drive_api(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["event_time", "user_id", "event_type", "miles_amount"])
    sheet.append(["2025-03-05 10:00:00", "u_1", "miles_earned", 100])
    sheet.append(["2025-03-05 11:00:00", "u_2", "like", None])
    buffer = BytesIO()
    book.save(buffer)
    bucket = LocalBucket(tmp_path / "bucket")
    with google_apis(buffer.getvalue()) as seen:
        manifests = extract_drive_xlsx(
            "file-9", bucket, None, "sheet_events", google_service("drive", "v3")
        ).manifests
    assert any("/files/file-9" in path and "alt=media" in path for path in seen)
    loaded, quarantined, _ = load_days(bucket, manifests, tmp_path / "w.duckdb")
    assert (loaded, quarantined) == (2, 0)


def test_a_sheet_without_a_required_column_is_refused(tmp_path: Path) -> None:
    from extract_load.sources.file import FileSourceError
    from extract_load.sources.sheets import stage_values

    with pytest.raises(FileSourceError, match=r"sheets://x/A:B: required column.*user_id"):
        stage_values(
            duckdb.connect(), [["event_time", "event_type"], ["2025-03-05", "like"]], "sheets://x/A:B"
        )
