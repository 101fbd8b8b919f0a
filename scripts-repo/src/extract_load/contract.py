"""The event contract shared by every source, the bucket and the raw tables.

Columns are kept as strings end to end until the warehouse: the raw layer must
hold exactly what the source sent, so that a cast that fails is a quarantine
with a reason, not a lost row.
"""

from __future__ import annotations

from dataclasses import dataclass

EVENT_COLUMNS: tuple[str, ...] = (
    "event_time",
    "user_id",
    "event_type",
    "transaction_category",
    "miles_amount",
    "platform",
    "utm_source",
    "country",
    "gender",
)

# Event types the app emits today (read from the app's export). A record with
# another type is quarantined as `unknown_event_type` until the list is
# extended (EVENT_TYPES in the environment), so a new type is seen, not guessed.
KNOWN_EVENT_TYPES: frozenset[str] = frozenset(
    {"miles_earned", "miles_redeemed", "reward_search", "share", "like"}
)


@dataclass(frozen=True)
class QuarantinePolicy:
    """What a record must be to load, and how large a quarantined share a run accepts.

    One policy for every stage that judges records: a file's extract applies it
    to the file as a whole, the load to each day.
    """

    event_types: frozenset[str] = KNOWN_EVENT_TYPES
    max_ratio: float = 0.05


DEFAULT_POLICY = QuarantinePolicy()

# Key under which a source line that could not be parsed is landed as text;
# the load quarantines such records as `broken_line`.
BROKEN_LINE_KEY = "_unparseable_line"
# A record too large to parse, set aside whole by the file's extract (sources/records.py): its stand-in.
OVERSIZED_KEY = "_oversized_record"

# Formats seen in app exports. Naive timestamps are local time (GMT+8), as exported.
NAIVE_TIME_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
)

# Offset used to turn timestamps that carry a zone into the export's local time.
SOURCE_UTC_OFFSET_HOURS = 8

# A time that names its zone: a clock time followed by Z or an offset. Anything
# else is a naive local time, whatever the host's time zone (a bare date, a
# format outside NAIVE_TIME_FORMATS): the zone is never guessed from the machine.
ZONED_TIME_PATTERN = r"\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*([Zz]|[+-]\d{2}(:?\d{2})?)$"

# Local times outside [EARLIEST, LATEST) are not dates a loyalty event can have
# (a typo, a sentinel such as 9999-12-31): such a record has no usable day.
EARLIEST_EVENT_TIME = "1970-01-01"
LATEST_EVENT_TIME = "9999-01-01"


def _sql_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def local_time_sql(column: str) -> str:
    """SQL that parses an exported timestamp string into naive local time, or NULL.

    The one parsing rule of every source (the loader, a file's extract, the
    stream's choice of day, the events API): the listed naive formats, then a
    time with a zone converted to local time, then any other ISO form read as
    local time. No step depends on the session's or the host's time zone.
    """
    return (
        f"coalesce(try_strptime({column}, {_sql_list(NAIVE_TIME_FORMATS)}), "
        f"case when regexp_matches({column}, '{ZONED_TIME_PATTERN}') "
        f"then try_cast(timezone('UTC', try_cast({column} as timestamptz)) "
        f"+ interval {SOURCE_UTC_OFFSET_HOURS} hour as timestamp) "
        f"else try_cast({column} as timestamp) end)"
    )


def local_days(values: list[object]) -> list[str | None]:
    """The local day (YYYY-MM-DD) of each value by local_time_sql, or None when it has none usable.

    Sources parsed outside the warehouse (the stream choosing a day to land a
    message in) ask DuckDB, so they follow exactly the loader's rule.
    """
    from extract_load import engine

    texts = [v.strip() if isinstance(v, str) else None for v in values]
    con = engine.connect()
    try:
        con.execute("create temp table times (i bigint, t varchar)")
        con.executemany("insert into times values (?, ?)", list(enumerate(texts)))
        local = local_time_sql("nullif(t, '')")
        rows = con.execute(
            f"select i, case when l >= timestamp '{EARLIEST_EVENT_TIME}' and l < timestamp "
            f"'{LATEST_EVENT_TIME}' then strftime(l, '%Y-%m-%d') end "
            f"from (select i, {local} as l from times) order by i"
        ).fetchall()
    finally:
        con.close()
    return [day for _, day in rows]


def local_today() -> str:
    """Today's local day (YYYY-MM-DD), by the same rule as an event's: where an arrival is dated."""
    import datetime as dt

    day = local_days([dt.datetime.now(dt.UTC).isoformat()])[0]
    assert day is not None
    return day
