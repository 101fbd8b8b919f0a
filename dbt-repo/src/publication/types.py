"""A warehouse column type, as the dbt docs name it, to the type every export of it carries.

Each warehouse names its types its own way (DuckDB `BIGINT`, BigQuery
`INT64`, PostgreSQL `bigint`, Snowflake `NUMBER(38,0)`); an export gives the
same dataset the same types whichever built it, so a consumer's schema never
changes with the warehouse. A type not listed is an error: exporting it as
text would change a public schema silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa


@dataclass(frozen=True)
class ExportType:
    arrow: pa.DataType
    json_schema: dict[str, Any]  # of one non-null value, as the JSON export writes it
    logical: str  # the catalog's portable name


INTEGER = ExportType(pa.int64(), {"type": "integer"}, "integer")
FLOAT = ExportType(pa.float64(), {"type": "number"}, "float")
BOOLEAN = ExportType(pa.bool_(), {"type": "boolean"}, "boolean")
STRING = ExportType(pa.string(), {"type": "string"}, "string")
DATE = ExportType(pa.date32(), {"type": "string", "format": "date"}, "date")
TIMESTAMP = ExportType(pa.timestamp("us"), {"type": "string"}, "timestamp")
TIMESTAMP_UTC = ExportType(pa.timestamp("us", "UTC"), {"type": "string"}, "timestamp_utc")

NAMES = (
    (
        INTEGER,
        (
            "tinyint",
            "smallint",
            "integer",
            "int",
            "int2",
            "int4",
            "int8",
            "bigint",
            "int64",
            "hugeint",
            "byteint",
        ),
    ),
    (FLOAT, ("double", "float", "float4", "float8", "float64", "real", "double precision")),
    (BOOLEAN, ("boolean", "bool")),
    (STRING, ("varchar", "text", "string", "character varying", "char", "character")),
    (DATE, ("date",)),
    (TIMESTAMP, ("timestamp", "datetime", "timestamp_ntz", "timestamp without time zone")),
    (TIMESTAMP_UTC, ("timestamptz", "timestamp with time zone", "timestamp_tz", "timestamp_ltz")),
)
BY_NAME = {name: export for export, names in NAMES for name in names}
DECIMAL = re.compile(r"^(decimal|numeric|number|bignumeric)\s*(\(\s*(\d+)\s*(,\s*(\d+)\s*)?\))?$")
# BigQuery NUMERIC and Snowflake NUMBER without arguments.
DEFAULT_DECIMAL = (38, 9)


def export_type(warehouse_type: str) -> ExportType:
    name = re.sub(r"\s+", " ", warehouse_type.strip().lower())
    # Sizes do not change what a value is: `varchar(256)`, `character varying(64)`.
    base = re.sub(r"\s*\(\s*\d+\s*\)$", "", name)
    if base in BY_NAME:
        return BY_NAME[base]
    if match := DECIMAL.match(name):
        precision = int(match.group(3)) if match.group(3) else DEFAULT_DECIMAL[0]
        scale = int(match.group(5)) if match.group(5) else (0 if match.group(3) else DEFAULT_DECIMAL[1])
        if scale == 0 and match.group(1) == "number":
            return INTEGER  # Snowflake's integers are NUMBER(38,0)
        if precision > 38:
            raise ValueError(f"{warehouse_type}: wider than an exportable decimal (38 digits)")
        return ExportType(
            pa.decimal128(precision, scale), {"type": "number"}, f"decimal({precision},{scale})"
        )
    raise ValueError(f"{warehouse_type}: no export type for this warehouse type; add it to publication.types")
