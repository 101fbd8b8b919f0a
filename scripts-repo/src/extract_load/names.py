"""Names that become SQL identifiers and bucket keys, checked where they enter.

A source's name is its bucket prefix (`raw/<source>/dt=...`) and its raw
table (`<schema>.<source>`); a schema is a SQL identifier. Interpolated
unchecked, `--source events/` deleted a day's landing while reporting
success and a crafted `--schema` created tables. Every command takes them
through `checked_name`, and the SQL quotes them besides.
"""

from __future__ import annotations

import re

# Lower-case letters, digits and underscores, starting with a letter: a valid
# unquoted identifier in DuckDB, PostgreSQL and BigQuery, and a plain path segment.
NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
# Google Drive file ids: letters, digits, '-' and '_'.
DRIVE_FILE_ID = re.compile(r"[A-Za-z0-9_-]{1,256}")


class InvalidNameError(ValueError):
    """A name that cannot be used as an identifier or a path segment."""


def checked_name(value: str, what: str = "name") -> str:
    """`value` if it is a safe identifier and path segment, else a clear error."""
    if not NAME.fullmatch(value):
        raise InvalidNameError(
            f"{what} {value!r} is not a valid name: use lower-case letters, digits and "
            "underscores, starting with a letter (at most 63 characters)"
        )
    return value


def checked_drive_file_id(value: str) -> str:
    if not DRIVE_FILE_ID.fullmatch(value):
        raise InvalidNameError(f"Drive file id {value!r} is not valid: letters, digits, '-' and '_' only")
    return value


def quoted(name: str) -> str:
    """A checked name as a quoted SQL identifier."""
    return '"' + checked_name(name) + '"'


def snowflake_quoted(name: str) -> str:
    """A checked name as Snowflake resolves it unquoted (upper case), quoted so a reserved word is safe too.

    Snowflake keeps a quoted identifier's case: `"events"` would be a table
    dbt's unquoted `raw.events` (that is, `RAW.EVENTS`) never finds.
    """
    return '"' + checked_name(name).upper() + '"'
