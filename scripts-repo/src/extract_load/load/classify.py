"""What each landed record is worth: loaded, or quarantined with a reason.

One rule, as SQL over the landed JSON lines, for every stage and every
warehouse: a file's extract classifies the whole file with it before landing
anything, the DuckDB load inserts what it accepts, and the BigQuery load
writes what it accepts to load-ready files. None of them re-implements it.
"""

from __future__ import annotations

from extract_load.contract import (
    BROKEN_LINE_KEY,
    EARLIEST_EVENT_TIME,
    EVENT_COLUMNS,
    LATEST_EVENT_TIME,
    OVERSIZED_KEY,
    local_time_sql,
)
from extract_load.intervals import Interval


def _sql_strings(values: list[str] | frozenset[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in sorted(values)) + "]"


def classified_sql(files: list[str], interval: Interval, event_types: frozenset[str]) -> str:
    """One row per landed line of one interval: fields, parsed time, quarantine reason (or NULL)."""
    return classified_days_sql({f: interval for f in files}, event_types)


def classified_days_sql(
    files: dict[str, Interval], event_types: frozenset[str], line_numbers: bool = True
) -> str:
    """One row per landed line of several intervals (each file belongs to one), with `_interval_start`.

    Each line is parsed once: its JSON type, then every field in one multi-path
    extraction (`->>` per field would parse the line once per field). One scan
    over many days' files uses every core; a scan per day is mostly start-up.
    Numbering lines (`_line`, for quarantined records) makes the scan serial,
    about half the speed on two cores: without `line_numbers` it is NULL.
    """
    file_list = _sql_strings(list(files))
    bounds = ",\n            ".join(
        "('" + f.replace("'", "''") + f"', date '{i.start.isoformat()}', date '{i.end.isoformat()}')"
        for f, i in files.items()
    )
    landed = f"""
        with file_intervals (filename, _interval_start, _interval_end) as (
            values
                {bounds}
        ),
        scanned as (
            -- A plain scan keeps file order (DuckDB preserves insertion order), so
            -- row numbers over it are line numbers.
            select json, filename, {"row_number() over ()" if line_numbers else "null"} as _row
            from read_ndjson_objects({file_list}, filename = true, compression = 'gzip')
        )
        select
            json,
            filename,
            {"_row - min(_row) over (partition by filename) + 1" if line_numbers else "cast(null as bigint)"}
                as _line,
            _interval_start,
            _interval_end
        from scanned
        inner join file_intervals using (filename)
    """
    return classify_sql(landed, event_types)


# The reasons a record has no day: a file's extract quarantines these itself.
UNDATABLE_REASONS = frozenset(
    {
        "not_a_json_object",
        "oversized_record",
        "broken_line",
        "non_standard_json",
        "missing_event_time",
        "unparseable_event_time",
        "event_time_out_of_range",
    }
)


def classify_sql(landed: str, event_types: frozenset[str]) -> str:
    """Each record of `landed` (json, filename, _line, _interval_start, _interval_end) with its fields,
    its parsed local time and the reason it must be quarantined, or NULL.

    One rule for every stage: the loader classifies landed days with it, and a
    file's extract classifies the whole file with it before landing anything,
    so both agree on what a record is worth. A record with no interval (NULL
    bounds) cannot be outside one.
    """
    paths = "[" + ", ".join(f"'$.\"{c}\"'" for c in EVENT_COLUMNS) + "]"
    fields = ",\n".join(
        f"        case when _kind = 'OBJECT' then nullif(trim(_values[{i}]), '') end as {c}"
        for i, c in enumerate(EVENT_COLUMNS, start=1)
    )
    event_time = f"nullif(trim(_values[{EVENT_COLUMNS.index('event_time') + 1}]), '')"
    return f"""
    with landed as (
        {landed}
    ),
    parsed as (
        select
            *,
            json_type(json) as _kind,
            json_extract_string(json, {paths}) as _values,
            json_extract_string(json, '$.{BROKEN_LINE_KEY}') as _broken,
            json_extract(json, '$.{OVERSIZED_KEY}') as _oversized,
            -- NaN and Infinity are not JSON, though DuckDB's reader takes them: no warehouse's
            -- JSON type would. A cheap test first, then the token outside any string.
            (contains(json::varchar, 'NaN') or contains(json::varchar, 'Infinity'))
                and regexp_matches(regexp_replace(json::varchar, '"(?:[^"\\\\]|\\\\.)*"', '', 'g'),
                                   '(NaN|Infinity)') as _non_standard
        from landed
    ),
    typed as (
        select
            json,
            filename,
            _line,
            _interval_start,
            _interval_end,
            _kind,
            _broken,
            _oversized,
            _non_standard,
{fields},
            {local_time_sql(event_time)} as _event_time_local
        from parsed
    )
    select
        * exclude (_kind, _broken, _oversized, _non_standard, _interval_end),
        case
            when _kind <> 'OBJECT' then 'not_a_json_object'
            when _oversized is not null then 'oversized_record'
            when _broken is not null then 'broken_line'
            when _non_standard then 'non_standard_json'
            when event_time is null then 'missing_event_time'
            when _event_time_local is null then 'unparseable_event_time'
            when _event_time_local < timestamp '{EARLIEST_EVENT_TIME}'
                or _event_time_local >= timestamp '{LATEST_EVENT_TIME}' then 'event_time_out_of_range'
            when _event_time_local < _interval_start or _event_time_local >= _interval_end
                then 'event_time_outside_interval'
            when user_id is null then 'missing_user_id'
            when event_type is null then 'missing_event_type'
            when not list_contains({_sql_strings(event_types)}, lower(event_type)) then 'unknown_event_type'
            when miles_amount is not null and try_cast(miles_amount as double) is null
                then 'non_numeric_miles_amount'
            when not isfinite(try_cast(miles_amount as double)) then 'non_finite_miles_amount'
            when try_cast(miles_amount as double) < 0 then 'negative_miles_amount'
        end as reason
    from typed
    """
