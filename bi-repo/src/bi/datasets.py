"""Superset datasets built from the dbt project: one per analytics model, described as dbt documents it.

Columns and their descriptions come from dbt's manifest (the `.yml` beside each
model); their types from the warehouse dbt built (a column's type is the
warehouse's to say). A column of a date type is the dataset's time column.
UUIDs are derived from the model's name, so regenerating never changes them
and charts keep pointing at their dataset.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

NAMESPACE = uuid.UUID("6f1c7d2e-9a4b-4e0f-8d3c-2b5a7e9f1c40")  # this project's; never change it
DATABASE_NAME = "warehouse"
# Columns the dashboard never shows: dbt's bookkeeping.
HIDDEN = {"loads_digest"}
TIME_TYPES = ("DATE", "TIMESTAMP")


def stable_uuid(kind: str, name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{name}"))


def database() -> dict[str, Any]:
    return {
        "database_name": DATABASE_NAME,
        "sqlalchemy_uri": "${WAREHOUSE_URI}",
        "cache_timeout": None,
        "expose_in_sqllab": True,
        "allow_run_async": False,
        "allow_ctas": False,
        "allow_cvas": False,
        "allow_dml": False,
        "allow_csv_upload": False,
        # DuckDB: open the file read-only, so dbt's build never waits for a dashboard.
        "extra": {"engine_params": {"connect_args": {"read_only": True}}},
        "impersonate_user": False,
        "configuration_method": "sqlalchemy_form",
        "uuid": stable_uuid("database", DATABASE_NAME),
        "version": "1.0.0",
    }


def analytics_models(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(
        (
            n
            for n in manifest["nodes"].values()
            if n["resource_type"] == "model" and n["schema"] == "analytics"
        ),
        key=lambda n: n["name"],
    )


def dataset(model: dict[str, Any], types: dict[str, str]) -> dict[str, Any]:
    columns = [name for name in model["columns"] if name not in HIDDEN]
    missing = [name for name in columns if name not in types]
    if missing:
        raise SystemExit(f"{model['name']}: the warehouse has no column {', '.join(missing)}; build it first")
    time_columns = [name for name in columns if types[name].startswith(TIME_TYPES)]
    return {
        "table_name": model["name"],
        "main_dttm_col": time_columns[0] if time_columns else None,
        "currency_code_column": None,
        "description": (model.get("description") or "").strip() or None,
        "default_endpoint": None,
        "offset": 0,
        "cache_timeout": None,
        "catalog": None,
        "schema": "analytics",
        "sql": None,
        "params": None,
        "template_params": None,
        "filter_select_enabled": True,
        "fetch_values_predicate": None,
        "extra": None,
        "normalize_columns": False,
        "always_filter_main_dttm": False,
        "folders": None,
        "uuid": stable_uuid("dataset", f"analytics.{model['name']}"),
        "metrics": [
            {
                "metric_name": "count",
                "verbose_name": "COUNT(*)",
                "metric_type": "count",
                "expression": "COUNT(*)",
                "description": None,
                "d3format": None,
                "currency": None,
                "extra": None,
                "warning_text": None,
            }
        ],
        "columns": [
            {
                "column_name": name,
                "verbose_name": None,
                "is_dttm": name in time_columns,
                "is_active": True,
                "type": types[name],
                "advanced_data_type": None,
                "groupby": True,
                "filterable": True,
                "expression": None,
                "description": (model["columns"][name].get("description") or "").strip() or None,
                "python_date_format": None,
                "datetime_format": None,
                "extra": None,
            }
            for name in columns
        ],
        "version": "1.0.0",
        "database_uuid": stable_uuid("database", DATABASE_NAME),
    }


def warehouse_types(duckdb_path: Path) -> dict[str, dict[str, str]]:
    """Column types of the analytics tables, by table, from a DuckDB file dbt built."""
    import duckdb

    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        rows = con.execute(
            "select table_name, column_name, data_type from information_schema.columns"
            " where table_schema = 'analytics'"
        ).fetchall()
    found: dict[str, dict[str, str]] = {}
    for table, column, kind in rows:
        found.setdefault(table, {})[column] = kind
    return found


def generate(manifest_path: Path, duckdb_path: Path) -> list[dict[str, Any]]:
    manifest = json.loads(manifest_path.read_text())
    types = warehouse_types(duckdb_path)
    return [dataset(model, types.get(model["name"], {})) for model in analytics_models(manifest)]
