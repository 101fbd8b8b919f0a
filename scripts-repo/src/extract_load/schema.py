"""The event contract shared by every source, the bucket and the raw tables.

Columns are kept as strings end to end until the warehouse: the raw layer must
hold exactly what the source sent, so that a cast that fails is a quarantine
with a reason, not a lost row.
"""

from __future__ import annotations

import datetime as _dt
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


def _sql_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def local_time_sql(column: str) -> str:
    """SQL that parses an exported timestamp string into naive local time, or NULL."""
    return (
        f"coalesce(try_strptime({column}, {_sql_list(NAIVE_TIME_FORMATS)}), "
        f"try_cast(try_cast({column} as timestamptz) at time zone 'UTC' "
        f"+ interval {SOURCE_UTC_OFFSET_HOURS} hour as timestamp))"
    )


def parse_local_time(value: str) -> _dt.datetime | None:
    """Python twin of local_time_sql, for sources parsed outside the warehouse."""
    text = value.strip()
    for fmt in NAIVE_TIME_FORMATS:
        try:
            return _dt.datetime.strptime(text, fmt)  # noqa: DTZ007 - naive local time is the contract
        except ValueError:
            continue
    try:
        parsed = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return (parsed.astimezone(_dt.UTC) + _dt.timedelta(hours=SOURCE_UTC_OFFSET_HOURS)).replace(tzinfo=None)
