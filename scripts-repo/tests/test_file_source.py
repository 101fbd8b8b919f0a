"""File drops: every line of the file is loaded or quarantined with a reason."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook

from extract_load.bucket import LocalBucket
from extract_load.file_source import FileSourceError, extract_file
from extract_load.intervals import Interval
from extract_load.warehouse import load_duckdb


def land_and_load(location: str, tmp_path: Path, interval: Interval | None = None) -> dict[str, object]:
    bucket = LocalBucket(tmp_path / "bucket")
    manifests = extract_file(location, bucket, interval, "events")
    db = tmp_path / "w.duckdb"
    results = [
        load_duckdb(bucket, "events", Interval.parse(m.interval_start), db, max_quarantine_ratio=1.0)
        for m in manifests
    ]
    with duckdb.connect(str(db), read_only=True) as con:
        reasons = dict(
            con.execute("select reason, count(*) from raw.events_quarantine group by 1").fetchall()
        )
    return {
        "days": len(manifests),
        "landed": sum(m.row_count for m in manifests),
        "loaded": sum(r.loaded for r in results),
        "quarantined": sum(r.quarantined for r in results),
        "reasons": reasons,
    }


def test_the_public_sample_export_reconciles_exactly(sample_export: Path, tmp_path: Path) -> None:
    with sample_export.open() as handle:
        lines = sum(1 for _ in handle) - 1
    counts = land_and_load(str(sample_export), tmp_path)
    assert counts["landed"] == counts["loaded"] == lines == 10_000
    assert counts["quarantined"] == 0 and counts["days"] == 91


def test_broken_csv_lines_and_bad_values_are_quarantined_not_dropped(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text(
        "event_time,user_id,event_type,miles_amount,gender\n"
        "2025-03-05 10:00:00,u_1,like,,female\n"
        "2025-03-05 12:00:00,u_3,share,,,extra,fields\n"  # too many fields: a broken line
        "yesterday,u_4,like,,\n"
        "2025-03-06 09:00:00,,like,,\n"
        "2025-03-06 10:00:00,u_5,miles_earned,abc,\n"
        "2025-03-06 11:00:00,u_6,miles_earned,30,male\n"
        "2025-03-06 12:00:00,u_7,superlike,,\n"
    )
    counts = land_and_load(str(export), tmp_path)
    assert (counts["landed"], counts["loaded"], counts["quarantined"]) == (7, 2, 5)
    assert counts["reasons"] == {
        "broken_line": 1,
        "unparseable_event_time": 1,
        "missing_user_id": 1,
        "non_numeric_miles_amount": 1,
        "unknown_event_type": 1,
    }


def test_an_unterminated_quote_quarantines_the_rest_of_the_file_as_text(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text(
        "event_time,user_id,event_type,miles_amount\n"
        "2025-03-05 10:00:00,u_1,like,\n"
        '2025-03-05 11:00:00,u_2,miles_earned,"12,5\n'
        "2025-03-05 12:00:00,u_3,share,\n"
    )
    counts = land_and_load(str(export), tmp_path)
    assert (counts["loaded"], counts["reasons"]) == (1, {"broken_line": 1})
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        kept = con.execute("select _record from raw.events_quarantine").fetchone()[0]
    assert "u_2" in kept and "u_3" in kept  # CSV quoting swallowed it, but the text is kept


def test_json_lines_with_a_truncated_line_and_gzip(tmp_path: Path) -> None:
    good = {"event_time": "2025-03-05 10:00:00", "user_id": "u_1", "event_type": "like", "gender": "female"}
    body = "\n".join([json.dumps(good), '{"event_time": "2025-03-05 10:0', "[1, 2]", json.dumps(good)]) + "\n"
    export = tmp_path / "events.jsonl.gz"
    export.write_bytes(gzip.compress(body.encode()))
    counts = land_and_load(str(export), tmp_path)
    assert (counts["landed"], counts["loaded"]) == (4, 2)
    assert counts["reasons"] == {"broken_line": 1, "not_a_json_object": 1}


def test_parquet_and_xlsx_drops(tmp_path: Path) -> None:
    rows = {
        "event_time": ["2025-03-05 10:00:00", "2025-03-06 10:00:00"],
        "user_id": ["u_1", "u_2"],
        "event_type": ["like", "miles_earned"],
        "miles_amount": [None, 25.0],
    }
    pq.write_table(pa.table(rows), tmp_path / "events.parquet")
    parquet = land_and_load(str(tmp_path / "events.parquet"), tmp_path / "p")
    assert (parquet["days"], parquet["loaded"], parquet["quarantined"]) == (2, 2, 0)

    book = Workbook()
    sheet = book.active
    sheet.append(list(rows))
    sheet.append([dt.datetime(2025, 3, 5, 10), "u_1", "like", None])
    sheet.append(["2025-03-06 10:00:00", "u_2", "miles_earned", 25])
    book.save(tmp_path / "events.xlsx")
    xlsx = land_and_load(str(tmp_path / "events.xlsx"), tmp_path / "x")
    assert (xlsx["days"], xlsx["loaded"], xlsx["quarantined"]) == (2, 2, 0)


def test_a_missing_required_column_names_the_column_and_the_file(tmp_path: Path) -> None:
    export = tmp_path / "no_user.csv"
    export.write_text("event_time,event_type\n2025-03-05 10:00:00,like\n")
    with pytest.raises(FileSourceError, match=r"no_user\.csv: required column\(s\) user_id missing"):
        extract_file(str(export), LocalBucket(tmp_path / "b"), None, "events")


def test_a_file_from_a_url_over_real_http(tmp_path: Path) -> None:
    served = tmp_path / "www"
    served.mkdir()
    (served / "drop.csv").write_text("event_time,user_id,event_type\n2025-03-05 10:00:00,u_1,like\n")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        counts = land_and_load(f"http://127.0.0.1:{server.server_port}/drop.csv", tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert (counts["landed"], counts["loaded"]) == (1, 1)


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_a_corrupt_gzip_drop_is_refused_and_lands_nothing(tmp_path: Path, damage: str) -> None:
    # DuckDB alone reads a truncated gzip stream as a shorter, plausible file.
    lines = "".join(f"2025-03-05 10:{i // 60 % 60:02d}:{i % 60:02d},u_{i},like\n" for i in range(20_000))
    data = bytearray(gzip.compress(f"event_time,user_id,event_type\n{lines}".encode()))
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        middle = len(data) // 2
        data[middle : middle + 4] = bytes(b ^ 0xFF for b in data[middle : middle + 4])
    export = tmp_path / "drop.csv.gz"
    export.write_bytes(bytes(data))
    bucket = LocalBucket(tmp_path / "bucket")
    with pytest.raises(FileSourceError, match=r"drop\.csv\.gz: (gzip stream is truncated|corrupt gzip data)"):
        extract_file(str(export), bucket, None, "events")
    assert list(bucket.list("raw")) == []
