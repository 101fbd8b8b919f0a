"""Records too large to parse are quarantined whole, and the parser's count is checked independently.

DuckDB's CSV reader dropped a line over about 32 MB without a trace (and the
counts "reconciled", both sides coming from the same reader), cut lines of
2-32 MB to 10,000 characters, and one JSON line over 2 MB failed the whole
file on every run.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from extract_load.cli import main
from extract_load.landing.bucket import LocalBucket
from extract_load.sources import file as file_source
from extract_load.sources.records import MAX_RECORD_BYTES, Scan


def run(*args: str) -> tuple[int, list[dict[str, object]], str]:
    result = CliRunner().invoke(main, list(args))
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, lines, result.output


def extract_and_load(export: Path, tmp_path: Path) -> tuple[dict[str, object], Path, LocalBucket]:
    bucket = tmp_path / "bucket"
    lenient = ("--max-quarantine-ratio", "1")  # small files: one oversized record is a large share
    code, lines, output = run("extract-file", "--path", str(export), "--bucket", str(bucket), *lenient)
    assert code == 0, output
    file = lines[-1]
    db = tmp_path / "w.duckdb"
    days = sorted(str(line["interval_start"]) for line in lines[:-1])
    end = (dt.date.fromisoformat(days[-1]) + dt.timedelta(days=1)).isoformat()
    code, _, output = run(
        "load",
        "--start",
        days[0],
        "--end",
        end,
        "--bucket",
        str(bucket),
        "--warehouse",
        str(db),
        *lenient,
    )
    assert code == 0, output
    return file, db, LocalBucket(bucket)


def kept(bucket: LocalBucket, db: Path) -> list[dict[str, object]]:
    """The quarantined stand-ins of oversized records, each checked against the bytes kept in the bucket."""
    with duckdb.connect(str(db), read_only=True) as con:
        stubs = [
            json.loads(record)["_oversized_record"]
            for (record,) in con.execute(
                "select _record from raw.events_quarantine where reason = 'oversized_record' order by all"
            ).fetchall()
        ]
    for stub in stubs:
        key = str(stub["kept_at"]).removeprefix(f"{bucket.url}/")
        data = bucket.read_bytes(key)
        assert len(data) == stub["bytes"] and hashlib.sha256(data).hexdigest() == stub["sha256"]
    return stubs


def test_csv_records_over_the_limit_are_quarantined_whole_and_the_rest_load(tmp_path: Path) -> None:
    big_but_fine = "x" * (MAX_RECORD_BYTES // 2)  # under the limit: loaded, not cut
    over = "y" * (3 * MAX_RECORD_BYTES)  # was cut to 10,000 characters
    huge = "z" * (40 * 1024 * 1024)  # was dropped without a trace
    rows = [
        "event_time,user_id,event_type,miles_amount,platform",
        "2025-03-05 10:00:00,u_1,like,,web",
        f'2025-03-05 11:00:00,u_2,like,,"{big_but_fine}"',
        f'2025-03-05 12:00:00,u_3,like,,"{over}\nsecond line"',
        '2025-03-06 09:00:00,u_4,share,,"two\nlines"',
        f"2025-03-06 10:00:00,u_5,like,,{huge}",
        "2025-03-07 10:00:00,u_6,miles_earned,30,ios",
    ]
    export = tmp_path / "export.csv"
    body = ("\n".join(rows) + "\n").encode()
    export.write_bytes(body)
    file, db, bucket = extract_and_load(export, tmp_path)
    # Six records in the file (Python's CSV reader counted them, apart from DuckDB's): none lost.
    assert (file["rows_in"], file["landed"], file["quarantined"]) == (6, 4, 2)
    assert file["reasons"] == {"oversized_record": 2}
    with duckdb.connect(str(db), read_only=True) as con:
        loaded = dict(con.execute("select user_id, length(platform) from raw.events").fetchall())
    assert loaded == {"u_1": 3, "u_2": len(big_but_fine), "u_4": len("two\nlines"), "u_6": 3}
    stubs = kept(bucket, db)
    # Each kept whole from the file's own bytes, with where it was: the line the parser counts
    # (the header is 1), the physical line and the byte offset.
    assert [(s["line"], s["physical_line"]) for s in stubs] == [(4, 4), (6, 8)]
    for stub, text in zip(
        stubs, (f'2025-03-05 12:00:00,u_3,like,,"{over}\nsecond line"\n', None), strict=True
    ):
        offset, size = int(stub["byte_offset"]), int(stub["bytes"])
        original = body[offset : offset + size]
        assert bucket.read_bytes(str(stub["kept_at"]).removeprefix(f"{bucket.url}/")) == original
        if text is not None:
            assert original == text.encode()
    assert str(stubs[1]["head"]).startswith("2025-03-06 10:00:00,u_5,like,,zzz")


def test_a_json_line_over_the_limit_no_longer_fails_the_file(tmp_path: Path) -> None:
    good = {"event_time": "2025-03-05 10:00:00", "user_id": "u_1", "event_type": "like"}
    big = {**good, "user_id": "u_big", "payload": "p" * (3 * MAX_RECORD_BYTES)}
    lines = [json.dumps(good), json.dumps(big), json.dumps({**good, "user_id": "u_2"})]
    export = tmp_path / "events.jsonl.gz"
    body = ("\n".join(lines) + "\n").encode()
    export.write_bytes(gzip.compress(body))
    file, db, bucket = extract_and_load(export, tmp_path)
    assert (file["rows_in"], file["landed"], file["quarantined"]) == (3, 2, 1)
    (stub,) = kept(bucket, db)
    assert stub["line"] == 2 and stub["byte_offset"] == len(lines[0]) + 1
    assert bucket.read_bytes(str(stub["kept_at"]).removeprefix(f"{bucket.url}/")) == lines[1].encode() + b"\n"


def test_a_parser_that_disagrees_with_the_files_own_count_lands_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A reader that lost a record, as DuckDB's did past its buffer: the independent count catches it.
    real = file_source.scan_csv

    def one_more(*args: object, **kwargs: object) -> Scan:
        scan = real(*args, **kwargs)  # type: ignore[arg-type]
        return Scan(scan.path, scan.records + 1, scan.limit, scan.oversized)

    monkeypatch.setattr(file_source, "scan_csv", one_more)
    export = tmp_path / "export.csv"
    export.write_text("event_time,user_id,event_type\n2025-03-05 10:00:00,u_1,like\n")
    code, lines, output = run("extract-file", "--path", str(export), "--bucket", str(tmp_path / "bucket"))
    assert code == 5, output  # EXIT_RECONCILIATION
    assert "the file holds 2 records" in output and "the parser read 1" in output
    assert lines == [] and LocalBucket(tmp_path / "bucket").list("raw") == []
