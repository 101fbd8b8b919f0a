"""Which models are public, and what their columns are: from the dbt project and its docs.

A model is exported only when its yml says so (`config: meta: {public: true}`):
nothing is public by default. A model that holds one row per user or per event
is never exported, whatever its `meta` says: one marked `personal: true`, or
whose built table (the docs' catalog, read from the warehouse) has a column
that identifies a user (`user_id`, or a column whose yml marks it
`personal: true`). Asking to publish one is an error, not a skip, so the
mistake is seen and fixed where it was made.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Column names that identify a person in this project's models, whatever the model says about itself.
PERSONAL_COLUMNS = frozenset({"user_id"})
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class NotPublicError(ValueError):
    """A model asked to be public but holds user-level data."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # the warehouse's own type, as the dbt docs show it
    description: str


@dataclass(frozen=True)
class Dataset:
    name: str
    unique_id: str
    schema: str
    relation: str  # `schema.table`, as every warehouse resolves it (dbt's schemas are named for their layer)
    description: str
    columns: tuple[Column, ...]


def _meta(node: Mapping[str, Any]) -> Mapping[str, Any]:
    """A model's or a column's meta, wherever the yml put it (`meta:` or `config: meta:`)."""
    return {**(node.get("meta") or {}), **((node.get("config") or {}).get("meta") or {})}


def public_datasets(manifest: Mapping[str, Any], catalog: Mapping[str, Any]) -> list[Dataset]:
    """The models marked public, checked, with their columns in table order from the catalog."""
    datasets = []
    for unique_id, node in sorted(manifest.get("nodes", {}).items()):
        if node.get("resource_type") != "model" or _meta(node).get("public") is not True:
            continue
        name = node["name"]
        if _meta(node).get("personal"):
            raise NotPublicError(f"{name} is marked personal (meta.personal): it cannot also be public")
        built = (catalog.get("nodes") or {}).get(unique_id)
        if not built:
            raise SystemExit(f"{name} is public but the docs' catalog has no table for it: was it built?")
        # Snowflake reports unquoted names in upper case: the public names are lower case everywhere.
        documented = {name.lower(): column for name, column in (node.get("columns") or {}).items()}
        personal = {c for c, column in documented.items() if _meta(column).get("personal")}
        in_order = sorted(built["columns"].values(), key=lambda c: c["index"])
        columns = [{**c, "name": c["name"].lower()} for c in in_order]
        found = [c["name"] for c in columns if c["name"] in PERSONAL_COLUMNS | personal]
        # A column the yml keeps out (`public: false`: bookkeeping, not data) is not exported.
        columns = [
            c for c in columns if _meta(documented.get(c["name"]) or {}).get("public", True) is not False
        ]
        if found:
            raise NotPublicError(
                f"{name} is marked public but has user-level columns {found}: never exported"
            )
        schema, table = node["schema"].lower(), (node.get("alias") or name).lower()
        for identifier in (schema, table, *(c["name"] for c in columns)):
            if not IDENTIFIER.match(identifier):
                raise SystemExit(f"{name}: {identifier!r} is not a plain identifier")
        datasets.append(
            Dataset(
                name=name,
                unique_id=unique_id,
                schema=schema,
                relation=f"{schema}.{table}",
                description=(node.get("description") or "").strip(),
                columns=tuple(
                    Column(
                        c["name"],
                        c["type"],
                        (
                            (documented.get(c["name"]) or {}).get("description") or c.get("comment") or ""
                        ).strip(),
                    )
                    for c in columns
                ),
            )
        )
    return datasets
