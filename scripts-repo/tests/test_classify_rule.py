"""The classification rule itself, on JSON values no landed file would hand it as they come.

The loader reads landed lines through DuckDB's reader, which drops a value's
leading whitespace; a file's extract builds its records as JSON values, which
keep it. Both go through one rule, so its test of a record's shape must not
depend on how the value got there.
"""

from __future__ import annotations

import duckdb

from extract_load.contract import EVENTS
from extract_load.load.classify import classify_sql

GOOD = '"event_time": "2025-03-05 10:00:00", "user_id": "u_1", "event_type": "like"'


def reasons(values: list[str]) -> list[str | None]:
    con = duckdb.connect()
    con.execute("create table rows_in (_line bigint, record json)")
    con.executemany("insert into rows_in values (?, ?)", list(enumerate(values, start=1)))
    landed = (
        "select record as json, 'f' as filename, _line, date '2025-03-05' as _interval_start,"
        " date '2025-03-06' as _interval_end from rows_in"
    )
    rows = con.execute(f"select _line, reason from ({classify_sql(landed, EVENTS)}) order by _line")
    return [reason for _, reason in rows.fetchall()]


def test_a_record_is_an_object_whatever_whitespace_comes_before_it() -> None:
    assert reasons([" \t\n{" + GOOD + "}", "[1, 2]", '"text"', "  3", "null"]) == [
        None,
        "not_a_json_object",
        "not_a_json_object",
        "not_a_json_object",
        "not_a_json_object",
    ]


def test_markers_and_non_standard_constants_are_found_in_one_parse() -> None:
    assert reasons(
        [
            "{" + GOOD + ', "_oversized_record": {"bytes": 9000000}}',
            '{"_unparseable_line": "a,b,,c"}',
            "{" + GOOD + ', "miles_amount": NaN}',
            "{" + GOOD + ', "note": "NaN and Infinity in a string are text"}',
            "{" + GOOD + "}",
        ]
    ) == ["oversized_record", "broken_line", "non_standard_json", None, None]
