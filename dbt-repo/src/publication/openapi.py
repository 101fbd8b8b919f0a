"""The OpenAPI 3.1 description of the public data paths, from one catalog.

Static files are an API too: the document names each path a client may GET
(the catalog, each dataset in each format under a publication), what each
answers (the JSON export's row schema, typed from the catalog's columns) and
the headers the viewer sends (ETag, Last-Modified, Cache-Control, CORS), so a
client generator or a contract test needs nothing but this file.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from publication.types import export_type

MEDIA_TYPES = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv", "json": "application/json"}
HEADERS = {
    "ETag": {
        "description": "Changes whenever the file does; send it back in If-None-Match.",
        "schema": {"type": "string"},
    },
    "Last-Modified": {"description": "When the file was written.", "schema": {"type": "string"}},
    "Cache-Control": {
        "description": "`no-cache` for the catalog (revalidate: 304 when unchanged); a publication's "
        "files never change (`immutable`).",
        "schema": {"type": "string"},
    },
    "Access-Control-Allow-Origin": {
        "description": "`*`: any site's script may read.",
        "schema": {"type": "string"},
    },
}


def catalog_components() -> dict[str, Any]:
    """The catalog's JSON Schema as components: its `$defs` beside it, references rewritten."""
    schema = json.loads(resources.files("publication").joinpath("catalog.schema.json").read_text())
    text = json.dumps(schema).replace('"#/$defs/', '"#/components/schemas/')
    schema = json.loads(text)
    definitions = schema.pop("$defs")
    for key in ("$schema", "$id"):
        schema.pop(key, None)
    return {"Catalog": schema, **definitions}


def row_schema(dataset: dict[str, Any]) -> dict[str, Any]:
    properties = {}
    for column in dataset["columns"]:
        value = export_type(column["warehouse_type"]).json_schema
        properties[column["name"]] = {
            **value,
            "type": [value["type"], "null"],
            "description": column["description"],
        }
    return {
        "type": "object",
        "required": list(properties),
        "additionalProperties": False,
        "properties": properties,
    }


def _responses(description: str, content: dict[str, Any]) -> dict[str, Any]:
    return {
        "200": {"description": description, "headers": HEADERS, "content": content},
        "304": {"description": "Not modified since the ETag or date the request sent.", "headers": HEADERS},
        "404": {"description": "No such publication or dataset (a removed publication is gone)."},
    }


def document(catalog: dict[str, Any]) -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/catalog.json": {
            "get": {
                "operationId": "getCatalog",
                "summary": "The current publication: every public dataset, its columns, rows and files",
                "responses": _responses(
                    "The catalog", {"application/json": {"schema": {"$ref": "#/components/schemas/Catalog"}}}
                ),
            }
        }
    }
    publication = {
        "name": "publication",
        "in": "path",
        "required": True,
        "description": "A publication id: the catalog's `publication` or one of its `previous_publications`.",
        "schema": {"$ref": "#/components/schemas/publication_id"},
    }
    schemas = catalog_components()
    for dataset in catalog["datasets"]:
        name = dataset["name"]
        schemas[f"{name}_row"] = row_schema(dataset)
        for fmt, media in MEDIA_TYPES.items():
            if fmt == "json":
                content = {
                    media: {
                        "schema": {"type": "array", "items": {"$ref": f"#/components/schemas/{name}_row"}}
                    }
                }
            else:
                content = {media: {"schema": {"type": "string", "contentMediaType": media}}}
            paths[f"/publications/{{publication}}/{name}.{fmt}"] = {
                "get": {
                    "operationId": f"get_{name}_{fmt}",
                    "summary": f"{name} as {fmt.upper()}",
                    "description": dataset["description"],
                    "parameters": [publication],
                    "responses": _responses(f"{name}, every row", content),
                }
            }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Public analytics data",
            "version": catalog["api_version"],
            "description": "Read-only, versioned exports of the analytics tables the dbt project marks "
            "public. Fetch catalog.json, then the files it names. GET and HEAD only.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": f"/data/{catalog['api_version']}"}],
        "paths": paths,
        "components": {"schemas": schemas},
    }
