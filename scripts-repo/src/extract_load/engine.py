"""One way to open DuckDB, so every step stays within a memory budget.

DuckDB's default limit is 80% of the machine's memory, and temporary tables
of an in-memory database only spill to disk when a temp directory is set. A
10M-event interval would then sit in RAM beside Airflow and dbt. With a
limit and a spill directory, a big interval costs disk and time, not memory.
"""

from __future__ import annotations

import os
import tempfile
import uuid

import duckdb

from extract_load.settings import settings


def connect(database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A connection limited by `EXTRACT_LOAD_MEMORY_LIMIT` that spills to `EXTRACT_LOAD_TEMP_DIR`."""
    config_of = settings()
    spill = str(config_of.temp_dir or os.path.join(tempfile.gettempdir(), "extract-load-spill"))
    os.makedirs(spill, exist_ok=True)  # DuckDB creates its own folder inside, not the parents
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": config_of.memory_limit,
        # One folder per connection: DuckDB treats its temp directory as its own (file names, size,
        # removal on close), so two loads spilling into one folder on a worker both failed.
        "temp_directory": os.path.join(spill, f"{os.getpid()}-{uuid.uuid4().hex[:8]}"),
        # Insertion order is what makes re-loads byte-identical and line numbers right.
        "preserve_insertion_order": True,
    }
    con = duckdb.connect(database, config=config)
    # Nothing may depend on where the process runs: times are parsed by one rule (contract.py),
    # and a session's zone would otherwise be the host's (set once ICU, which owns it, is loaded).
    con.execute("set TimeZone = 'UTC'")
    return con
