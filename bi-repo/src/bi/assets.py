"""The dashboards as code: Superset's own export format, kept in git without what only one install knows.

A Superset export names each object by UUID and also carries what one
install made up: numeric ids (`chartId`, `datasource: 7__table`), a
timestamp, file names with ids in them, the warehouse's URI. `normalise`
drops or replaces those, so the text in git is the same whichever Superset it
was exported from, and "export after import equals git" is a plain
comparison. The warehouse's URI is the environment's (bi.settings): in git
the database says `sqlalchemy_uri: ${WAREHOUSE_URI}`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

KINDS = ("databases", "datasets", "charts", "dashboards")
WAREHOUSE_URI = "${WAREHOUSE_URI}"
Key = tuple[str, str]  # (kind, uuid)


def load(folder: Path) -> dict[Key, dict[str, Any]]:
    """Every asset under `folder`, by kind and UUID."""
    if not folder.is_dir():
        raise SystemExit(f"{folder}: no assets folder (BI_ASSETS_DIR names it)")
    found: dict[Key, dict[str, Any]] = {}
    for kind in KINDS:
        for path in sorted((folder / kind).glob("*.yaml")):
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
            key = (kind, str(document["uuid"]))
            if key in found:
                raise SystemExit(f"{path}: UUID {key[1]} is used twice")
            found[key] = canonical(document)
    return found


def normalise(files: Iterable[tuple[str, str]]) -> dict[Key, dict[str, Any]]:
    """An export's (file name, YAML) pairs, without what only the exporting install knows."""
    found: dict[Key, dict[str, Any]] = {}
    for name, text in files:
        kind = name.split("/", 1)[0]
        if kind not in KINDS:
            continue  # metadata.yaml: a version and a timestamp
        document = yaml.safe_load(text)
        if kind == "databases":
            document["sqlalchemy_uri"] = WAREHOUSE_URI
        elif kind == "charts":
            (document.get("params") or {}).pop("datasource", None)
            if document.get("query_context"):
                document["query_context"] = _without_ids(document["query_context"])
        elif kind == "dashboards":
            uuids: dict[int, str] = {}
            for node in (document.get("position") or {}).values():
                if isinstance(node, dict):
                    meta = node.get("meta") or {}
                    if "chartId" in meta:
                        uuids[meta.pop("chartId")] = str(meta.get("uuid"))
            _map_filter_scopes(document, uuids)
        found[(kind, str(document["uuid"]))] = canonical(document)
    return found


def canonical(document: dict[str, Any]) -> dict[str, Any]:
    """A dataset's columns and metrics by name: Superset exports them in its own order."""
    for field, key in (("columns", "column_name"), ("metrics", "metric_name")):
        if isinstance(document.get(field), list):
            document[field] = sorted(document[field], key=lambda item: str(item.get(key)))
    return document


def _without_ids(query_context: str) -> str:
    """A chart's saved query without the dataset id the importing install gave it."""
    context = json.loads(query_context)
    context.pop("datasource", None)
    (context.get("form_data") or {}).pop("datasource", None)
    for query in context.get("queries") or []:
        query.pop("datasource", None)
    return json.dumps(context, sort_keys=True)


def bundle(assets: Mapping[Key, dict[str, Any]], warehouse_uri: str) -> dict[str, str]:
    """What Superset's importer reads: file name -> YAML, the warehouse URI filled in."""
    contents = {
        "metadata.yaml": yaml.safe_dump(
            {"version": "1.0.0", "type": "assets", "timestamp": "1970-01-01T00:00:00+00:00"}
        )
    }
    for (kind, uuid), document in sorted(assets.items()):
        document = copy.deepcopy(document)
        if kind == "databases":
            document["sqlalchemy_uri"] = warehouse_uri
        elif kind == "dashboards":
            # The importer maps each chart's id in the exporting install to its own by UUID, so it
            # wants one; any distinct number will do (git keeps none).
            charts = [
                n
                for n in (document.get("position") or {}).values()
                if isinstance(n, dict) and n.get("type") == "CHART"
            ]
            numbers: dict[str, int] = {}
            for number, node in enumerate(charts, start=1):
                node.setdefault("meta", {})["chartId"] = number
                numbers[node["meta"]["uuid"]] = number
            _map_filter_scopes(document, numbers)
        contents[f"{kind}/{uuid}.yaml"] = yaml.safe_dump(document, sort_keys=False)
    return contents


def _map_filter_scopes(dashboard: dict[str, Any], mapping: Mapping[Any, Any]) -> None:
    """Charts a native filter leaves out, from one naming to the other: UUIDs in git, ids in an install."""
    for native_filter in (dashboard.get("metadata") or {}).get("native_filter_configuration") or []:
        scope = native_filter.get("scope") or {}
        if scope.get("excluded"):
            missing = [chart for chart in scope["excluded"] if chart not in mapping]
            if missing:
                raise SystemExit(
                    f"native filter {native_filter.get('name')}: no chart {missing} on the dashboard"
                )
            scope["excluded"] = sorted(mapping[chart] for chart in scope["excluded"])


def differences(expected: Mapping[Key, Any], actual: Mapping[Key, Any]) -> list[str]:
    """What differs, one line per object, for a person to act on."""
    lines = []
    for key in sorted(set(expected) | set(actual)):
        kind, uuid = key
        name = _name(expected.get(key) or actual.get(key) or {})
        if key not in actual:
            lines.append(f"{kind} {name} ({uuid}): in git, not in Superset")
        elif key not in expected:
            lines.append(f"{kind} {name} ({uuid}): in Superset, not in git")
        elif expected[key] != actual[key]:
            fields = sorted(
                k for k in set(expected[key]) | set(actual[key]) if expected[key].get(k) != actual[key].get(k)
            )
            lines.append(f"{kind} {name} ({uuid}): differs in {', '.join(fields)}")
    return lines


def write(folder: Path, assets: Mapping[Key, dict[str, Any]]) -> list[Path]:
    """Assets as files named for what they are (their title), stable across installs."""
    written = []
    for (kind, _uuid), document in sorted(assets.items()):
        path = folder / kind / f"{_slug(_name(document))}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
        written.append(path)
    return written


def _name(document: Mapping[str, Any]) -> str:
    for field in ("dashboard_title", "slice_name", "table_name", "database_name"):
        if document.get(field):
            return str(document[field])
    return str(document.get("uuid", "?"))


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")
