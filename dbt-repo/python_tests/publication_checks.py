"""What a consumer of the public data relies on, checked against the warehouse the data came from.

Shared by the dbt-repo tests (a folder, a bucket) and the whole-pipeline tests
(the files a DAG run published, read from disk or through nginx): `fetch`
returns a path's bytes, relative to `data/v1/`. Each format is read back typed
(the catalog's portable types as DuckDB types) and compared with the
warehouse's own rows, in the same order.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import jsonschema
from openapi_spec_validator import validate as validate_openapi

DUCKDB_TYPES = {
    "integer": "BIGINT",
    "float": "DOUBLE",
    "boolean": "BOOLEAN",
    "string": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "timestamp_utc": "TIMESTAMPTZ",
}
USER_LEVEL = ("fct_events", "dim_users", "fct_user_days", "stg_events")


def duckdb_type(portable: str) -> str:
    return DUCKDB_TYPES.get(portable) or portable.upper()  # decimal(p,s)


def check_publication(
    fetch: Callable[[str], bytes], warehouse: duckdb.DuckDBPyConnection, schema: str = "analytics"
) -> dict[str, Any]:
    """The catalog and OpenAPI document validate, and every file's rows equal the warehouse's."""
    catalog: dict[str, Any] = json.loads(fetch("catalog.json"))
    catalog_schema = json.loads(fetch("catalog.schema.json"))
    jsonschema.Draft202012Validator.check_schema(catalog_schema)
    checker = jsonschema.FormatChecker()
    jsonschema.Draft202012Validator(catalog_schema, format_checker=checker).validate(catalog)
    document = json.loads(fetch("openapi.json"))
    validate_openapi(document)
    names = {d["name"] for d in catalog["datasets"]}
    assert names and not names & set(USER_LEVEL), names
    with tempfile.TemporaryDirectory() as workdir:
        for dataset in catalog["datasets"]:
            columns = [c["name"] for c in dataset["columns"]]
            assert "user_id" not in columns, dataset["name"]
            expected = warehouse.execute(
                f"select {', '.join(columns)} from {schema}.{dataset['name']} order by all"
            ).fetchall()
            assert len(expected) == dataset["rows"], dataset["name"]
            typed = (f"'{c['name']}': '{duckdb_type(c['type'])}'" for c in dataset["columns"])
            types = "{" + ", ".join(typed) + "}"
            readers = {
                "parquet": "read_parquet('<path>')",
                "csv": f"read_csv('<path>', header = true, columns = {types}, auto_detect = false)",
                "json": f"read_json('<path>', format = 'array', columns = {types})",
            }
            for fmt, described in dataset["files"].items():
                content = fetch(described["path"])
                assert len(content) == described["bytes"], described["path"]
                assert hashlib.sha256(content).hexdigest() == described["sha256"], described["path"]
                local = Path(workdir) / Path(described["path"]).name
                local.write_bytes(content)
                reader = readers[fmt].replace("<path>", str(local))
                read = warehouse.execute(f"select * from {reader}").fetchall()
                assert read == expected, (dataset["name"], fmt)
            rows = json.loads(fetch(dataset["files"]["json"]["path"]))
            row_schema = document["components"]["schemas"][f"{dataset['name']}_row"]
            validator = jsonschema.Draft202012Validator(row_schema, format_checker=checker)
            for row in rows:
                validator.validate(row)
            assert dataset["content_hash"] == "sha256:" + dataset["files"]["json"]["sha256"]
    return catalog
