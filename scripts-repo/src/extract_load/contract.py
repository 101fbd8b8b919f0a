"""What a source's records must hold: its contract, declared once and read by every stage.

A contract names a source's columns with their types, which are required,
the column whose local day is the record's data interval, accepted values,
bounds, and which columns hold personal data. It is declared in YAML, in
`config/contracts/<name>.yaml` (packaged) or in a `contracts/` folder beside
the sources file, and a source names it (`contract: events`, the default).
The file's extract, both warehouses' loads and the raw tables all read it;
nothing else says what a record must be.

Columns are kept as strings end to end until the warehouse: the raw layer must
hold exactly what the source sent, so that a cast that fails is a quarantine
with a reason, not a lost row.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from extract_load.names import InvalidNameError, checked_name

TYPES = ("string", "number", "integer", "boolean", "date", "timestamp")


class ContractError(ValueError):
    """A contract that cannot be used: unknown keys, a bad type, a time column that is not a column."""


@dataclass(frozen=True)
class Field:
    name: str
    type: str = "string"
    required: bool = False
    # Compared case-insensitively; a value outside them is quarantined as unknown_<name>.
    accepted_values: frozenset[str] | None = None
    minimum: float | None = None
    personal: bool = False
    description: str = ""


@dataclass(frozen=True)
class Contract:
    name: str
    fields: tuple[Field, ...]
    # The column whose local day is a record's data interval; None for a snapshot source (a catalogue,
    # a budget sheet), each of whose runs lands the whole of it and replaces the raw table.
    time_column: str | None
    version: int = 1
    description: str = ""
    primary_key: tuple[str, ...] = ()
    on_new_column: str = "keep"

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)

    @property
    def is_snapshot(self) -> bool:
        return self.time_column is None

    @property
    def undatable_reasons(self) -> frozenset[str]:
        """The reasons a record has no day: a file's extract or the stream quarantines these itself."""
        t = self.time_column
        if t is None:  # a snapshot's records all belong to the snapshot's day
            return STRUCTURAL_REASONS
        return STRUCTURAL_REASONS | {f"missing_{t}", f"unparseable_{t}", f"{t}_out_of_range"}

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    def with_accepted_values(self, column: str, values: frozenset[str]) -> Contract:
        """The same contract accepting `values` in `column` (EVENT_TYPES overrides event_type's list)."""
        if column not in self.columns or self.field(column).accepted_values is None:
            raise ContractError(f"contract {self.name}: {column} has no accepted values to override")
        fields = tuple(
            replace(f, accepted_values=frozenset(v.lower() for v in values)) if f.name == column else f
            for f in self.fields
        )
        return replace(self, fields=fields)

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "time_column": self.time_column,
            "primary_key": list(self.primary_key),
            "on_new_column": self.on_new_column,
            "columns": [
                {
                    "name": f.name,
                    "type": f.type,
                    "required": f.required,
                    **({"accepted_values": sorted(f.accepted_values)} if f.accepted_values else {}),
                    **({"minimum": f.minimum} if f.minimum is not None else {}),
                    **({"personal": True} if f.personal else {}),
                }
                for f in self.fields
            ],
        }


# Reasons a record is refused before any column is read (the same for every contract).
STRUCTURAL_REASONS = frozenset({"not_a_json_object", "oversized_record", "broken_line", "non_standard_json"})

_FIELD_KEYS = {"name", "type", "required", "accepted_values", "minimum", "personal", "description"}
_CONTRACT_KEYS = {
    "name", "version", "description", "time_column", "primary_key", "on_new_column", "columns",
}  # fmt: skip


def parse_contract(document: Mapping[str, Any], origin: str) -> Contract:
    """A contract from its YAML document; every mistake is a ContractError naming `origin`."""

    def fail(message: str) -> ContractError:
        return ContractError(f"{origin}: {message}")

    unknown = set(document) - _CONTRACT_KEYS
    if unknown:
        raise fail(f"unknown key(s) {', '.join(sorted(unknown))}")
    fields = []
    for spec in document.get("columns") or []:
        if not isinstance(spec, Mapping) or "name" not in spec:
            raise fail(f"each column needs a name: {spec!r}")
        if set(spec) - _FIELD_KEYS:
            raise fail(f"column {spec['name']}: unknown key(s) {', '.join(sorted(set(spec) - _FIELD_KEYS))}")
        try:
            name = checked_name(str(spec["name"]), "column")
        except InvalidNameError as exc:
            raise fail(str(exc)) from exc
        kind = spec.get("type", "string")
        if kind not in TYPES:
            raise fail(f"column {name}: type {kind!r} is not one of {', '.join(TYPES)}")
        accepted = spec.get("accepted_values")
        fields.append(
            Field(
                name=name,
                type=kind,
                required=bool(spec.get("required", False)),
                accepted_values=frozenset(str(v).lower() for v in accepted) if accepted is not None else None,
                minimum=float(spec["minimum"]) if spec.get("minimum") is not None else None,
                personal=bool(spec.get("personal", False)),
                description=str(spec.get("description", "")),
            )
        )
    names = [f.name for f in fields]
    if not fields or len(set(names)) != len(names):
        raise fail("columns must be listed, each name once")
    if "time_column" not in document:
        raise fail("time_column is required: a timestamp column, or null for a snapshot source")
    time_column = document["time_column"]
    if time_column is not None and (
        time_column not in names or next(f for f in fields if f.name == time_column).type != "timestamp"
    ):
        raise fail(f"time_column {time_column!r} must be one of the columns, of type timestamp")
    primary_key = tuple(document.get("primary_key") or ())
    if set(primary_key) - set(names):
        raise fail(f"primary_key names unknown column(s) {', '.join(sorted(set(primary_key) - set(names)))}")
    if document.get("on_new_column", "keep") != "keep":
        raise fail("on_new_column: only `keep` is supported (new columns stay in _record)")
    return Contract(
        name=str(document.get("name") or origin),
        fields=tuple(fields),
        time_column=None if time_column is None else str(time_column),
        version=int(document.get("version", 1)),
        description=str(document.get("description", "")),
        primary_key=primary_key,
    )


@functools.cache
def _packaged(name: str) -> Contract:
    import yaml

    resource = resources.files("extract_load").joinpath(f"config/contracts/{name}.yaml")
    if not resource.is_file():
        raise ContractError(f"no contract named {name!r} (config/contracts/{name}.yaml)")
    return parse_contract(yaml.safe_load(resource.read_text()) or {}, f"contracts/{name}.yaml")


def load_contract(spec: str | Mapping[str, Any], beside: Path | None = None) -> Contract:
    """A source's contract: inline (a mapping), or by name from `<beside>/contracts/` or the packaged ones."""
    import yaml

    if isinstance(spec, Mapping):
        return parse_contract(spec, "inline contract")
    name = checked_name(str(spec), "contract")
    if beside is not None and (beside / "contracts" / f"{name}.yaml").is_file():
        path = beside / "contracts" / f"{name}.yaml"
        return parse_contract(yaml.safe_load(path.read_text()) or {}, str(path))
    return _packaged(name)


EVENTS = _packaged("events")

EVENT_COLUMNS: tuple[str, ...] = EVENTS.columns
KNOWN_EVENT_TYPES: frozenset[str] = EVENTS.field("event_type").accepted_values or frozenset()


@dataclass(frozen=True)
class QuarantinePolicy:
    """What a record must be to load, and how large a quarantined share a run accepts.

    One policy for every stage that judges records: a file's extract applies it
    to the file as a whole, the load to each day.
    """

    contract: Contract = field(default=EVENTS)
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
    import pyarrow as pa

    from extract_load import engine

    texts = [v.strip() if isinstance(v, str) else None for v in values]
    # One Arrow table handed over whole: `executemany` inserted row by row, three quarters of
    # a Kafka batch's time (bench P4: 15.4 s of 20.5 s for 20,000 messages).
    times = pa.table({"i": pa.array(range(len(texts)), pa.int64()), "t": pa.array(texts, pa.string())})
    con = engine.connect()
    try:
        con.register("times", times)
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
