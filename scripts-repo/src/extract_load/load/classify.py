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
    LATEST_EVENT_TIME,
    OVERSIZED_KEY,
    Contract,
    Field,
    local_time_sql,
)
from extract_load.intervals import Interval


def _sql_strings(values: list[str] | frozenset[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in sorted(values)) + "]"


def classified_sql(files: list[str], interval: Interval, contract: Contract) -> str:
    """One row per landed line of one interval: fields, parsed time, quarantine reason (or NULL)."""
    return classified_days_sql({f: interval for f in files}, contract)


def classified_days_sql(files: dict[str, Interval], contract: Contract, line_numbers: bool = True) -> str:
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
    return classify_sql(landed, contract)


def _column_checks(f: Field) -> list[str]:
    """The CASE branches that hold one column to its contract, in the order they are tried."""
    c = f.name
    checks = []
    if f.required:
        checks.append(f"when {c} is null then 'missing_{c}'")
    if f.accepted_values is not None:
        checks.append(
            f"when not list_contains({_sql_strings(f.accepted_values)}, lower({c})) then 'unknown_{c}'"
        )
    if f.type == "number":
        number = f"try_cast({c} as double)"
        checks += [
            f"when {c} is not null and {number} is null then 'non_numeric_{c}'",
            f"when not isfinite({number}) then 'non_finite_{c}'",
        ]
        if f.minimum is not None:
            reason = f"negative_{c}" if f.minimum == 0 else f"{c}_below_minimum"
            checks.append(f"when {number} < {f.minimum!r} then '{reason}'")
    elif f.type == "integer":
        checks.append(f"when {c} is not null and try_cast({c} as bigint) is null then 'non_integer_{c}'")
        if f.minimum is not None:
            reason = f"negative_{c}" if f.minimum == 0 else f"{c}_below_minimum"
            checks.append(f"when try_cast({c} as bigint) < {f.minimum!r} then '{reason}'")
    elif f.type == "boolean":
        checks.append(f"when {c} is not null and try_cast({c} as boolean) is null then 'non_boolean_{c}'")
    elif f.type == "date":
        checks.append(f"when {c} is not null and try_cast({c} as date) is null then 'unparseable_{c}'")
    elif f.type == "timestamp":
        checks.append(f"when {c} is not null and {local_time_sql(c)} is null then 'unparseable_{c}'")
    return checks


def classify_sql(landed: str, contract: Contract) -> str:
    """Each record of `landed` (json, filename, _line, _interval_start, _interval_end) with its fields,
    its parsed local time and the reason it must be quarantined, or NULL.

    One rule for every stage: the loader classifies landed days with it, and a
    file's extract classifies the whole file with it before landing anything,
    so both agree on what a record is worth. The rule is the contract's: the
    record's shape first, then its time (which names its day), then each
    column in the contract's order. A record with no interval (NULL bounds)
    cannot be outside one.
    """
    columns = contract.columns
    time = contract.time_column
    # The markers a stage writes in place of a record it could not land as it came, after the fields.
    paths = "[" + ", ".join(f"'$.\"{c}\"'" for c in (*columns, BROKEN_LINE_KEY, OVERSIZED_KEY)) + "]"
    fields = ",\n".join(
        f"        case when _is_object then nullif(trim(_values[{i}]), '') end as {c}"
        for i, c in enumerate(columns, start=1)
    )
    if time is None:  # a snapshot: no record has a time of its own, all belong to the snapshot's day
        local_time = "cast(null as timestamp)"
        time_checks = ""
    else:
        local_time = local_time_sql(f"nullif(trim(_values[{columns.index(time) + 1}]), '')")
        time_checks = f"""when {time} is null then 'missing_{time}'
            when _event_time_local is null then 'unparseable_{time}'
            when _event_time_local < timestamp '{EARLIEST_EVENT_TIME}'
                or _event_time_local >= timestamp '{LATEST_EVENT_TIME}' then '{time}_out_of_range'
            when _event_time_local < _interval_start or _event_time_local >= _interval_end
                then '{time}_outside_interval'"""
    column_checks = "\n            ".join(
        check for f in contract.fields if f.name != time for check in _column_checks(f)
    )
    return f"""
    with landed as (
        {landed}
    ),
    extracted as (
        select
            *,
            -- Each line is parsed once: every JSON function parses the whole line again, and
            -- four of them were most of a load's time (bench P1). A JSON value's first
            -- character after whitespace says its type.
            starts_with(ltrim(json::varchar, ' \t\n\r'), '{{') as _is_object,
            json_extract_string(json, {paths}) as _values,
            -- NaN and Infinity are not JSON, though DuckDB's reader takes them: no warehouse's
            -- JSON type would. A cheap test first, then the token outside any string. CASE, not
            -- AND: in a select list DuckDB evaluates both sides of an AND for every row, and the
            -- regular expressions were a third of a load's time (bench P1).
            case
                when contains(json::varchar, 'NaN') or contains(json::varchar, 'Infinity')
                    then regexp_matches(regexp_replace(json::varchar, '"(?:[^"\\\\]|\\\\.)*"', '', 'g'),
                                        '(NaN|Infinity)')
                else false
            end as _non_standard
        from landed
    ),
    parsed as (
        -- A marker's value is never null (a line's text, an object saying what was cut).
        select
            *,
            _values[{len(columns) + 1}] as _broken,
            _values[{len(columns) + 2}] as _oversized
        from extracted
    ),
    typed as (
        select
            json,
            filename,
            _line,
            _interval_start,
            _interval_end,
            _is_object,
            _broken,
            _oversized,
            _non_standard,
{fields},
            {local_time} as _event_time_local
        from parsed
    )
    select
        * exclude (_is_object, _broken, _oversized, _non_standard, _interval_end),
        case
            when not _is_object then 'not_a_json_object'
            when _oversized is not null then 'oversized_record'
            when _broken is not null then 'broken_line'
            when _non_standard then 'non_standard_json'
            {time_checks}
            {column_checks}
        end as reason
    from typed
    """
