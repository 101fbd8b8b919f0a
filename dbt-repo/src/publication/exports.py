"""`publish-data`: export the public analytics tables as files, an API with no server.

Each model the dbt project marks public (publication.datasets) is read from
the warehouse dbt built and written as Parquet, CSV and JSON (an array of
objects: what a browser script fetches), with the same types whichever
warehouse built it (publication.types). A publication is immutable and
versioned:

    data/v1/catalog.json                         what is current (the pointer)
    data/v1/catalog.schema.json, openapi.json    what the catalog and the paths are
    data/v1/publications/<id>/<dataset>.<format> one publication's files, never rewritten

The files of a new publication are written first under a new id; then
`catalog.json`, which names them, replaces the old one in one step and only
if nobody replaced it meanwhile (storage.Store). A reader holding the previous
catalog keeps reading whole files: the previous publications stay until two
newer ones are complete, and a publication killed half-way is never named by
any catalog (the next one removes its files).

The columns, types and descriptions come from the dbt docs `publish-docs`
published (their manifest and catalog, from one dbt invocation).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import secrets
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from publication import openapi
from publication.datasets import Dataset, NotPublicError, public_datasets
from publication.storage import IMMUTABLE, NO_CACHE, Store, store
from publication.types import export_type
from warehouses import Warehouse, from_environment
from warehouses.results import emit

API_VERSION = "v1"
CATALOG = "catalog.json"
CATALOG_SCHEMA = "catalog.schema.json"
OPENAPI = "openapi.json"
PUBLICATIONS = "publications"
FORMATS = ("parquet", "csv", "json")
# Publications kept besides the current one, for readers still holding an older catalog.
KEEP_PREVIOUS = 2


@dataclass(frozen=True)
class DocsArtifacts:
    manifest: Mapping[str, Any]
    catalog: Mapping[str, Any]


def read_docs(docs: Store) -> DocsArtifacts:
    manifest, catalog = docs.read("manifest.json"), docs.read("catalog.json")
    if manifest is None or catalog is None:
        raise SystemExit(f"{docs.location}: no dbt docs published there yet (publish-docs runs first)")
    artifacts = DocsArtifacts(json.loads(manifest), json.loads(catalog))
    # Both come from one `dbt docs generate`: a pair from two runs would describe two projects.
    ids = {artifacts.manifest["metadata"]["invocation_id"], artifacts.catalog["metadata"]["invocation_id"]}
    if len(ids) != 1:
        raise SystemExit(
            f"{docs.location}: manifest and catalog are from different dbt runs; publish the docs again"
        )
    return artifacts


def publication_id(now: dt.datetime) -> str:
    """Sortable by time to the microsecond (prune keeps anything newer than itself), then 3 random hex
    digits: unique between two publishers that start in the same microsecond."""
    return f"{now:%Y%m%dT%H%M%SZ}-{now.microsecond:05x}{secrets.token_hex(2)[:3]}"


# Snowflake's catalog (information_schema.columns.data_type) says NUMBER whatever the precision and
# scale; the columns' own numeric_precision and numeric_scale say which number it is.
SNOWFLAKE_NUMBER_SCALES = (
    "select lower(column_name) as name, numeric_precision as digits, numeric_scale as scale"
    " from information_schema.columns where lower(table_schema) = @schema and lower(table_name) = @table"
)


def with_exact_numbers(warehouse: Warehouse, dataset: Dataset, adapter: str) -> Dataset:
    """The dataset with each bare NUMBER given the precision and scale the warehouse holds it at."""
    bare = [c for c in dataset.columns if c.type.strip().upper() in ("NUMBER", "DECIMAL", "NUMERIC")]
    if adapter != "snowflake" or not bare:
        return dataset
    schema, table = dataset.relation.split(".")
    held = warehouse.query(SNOWFLAKE_NUMBER_SCALES, {"schema": schema, "table": table})
    found = {r["name"]: r for r in held}
    columns = tuple(
        replace(c, type=f"NUMBER({found[c.name]['digits']},{found[c.name]['scale']})") if c in bare else c
        for c in dataset.columns
    )
    return replace(dataset, columns=columns)


def read_table(warehouse: Warehouse, dataset: Dataset) -> pa.Table:
    schema = pa.schema([(c.name, export_type(c.type).arrow) for c in dataset.columns])
    rows = warehouse.query(f"select {', '.join(c.name for c in dataset.columns)} from {dataset.relation}")
    return pa.Table.from_pylist(rows, schema=schema)


def write_formats(table: pa.Table, folder: Path) -> dict[str, bytes]:
    """The table in every format, rows in one order (all columns), so equal data gives equal bytes."""
    con = duckdb.connect(config={"threads": 1})
    try:
        con.register("exported", table)
        statements = {
            "parquet": "format parquet, compression zstd",
            "csv": "format csv, header true",
            "json": "format json, array true",
        }
        files = {}
        for name, options in statements.items():
            path = folder / f"table.{name}"
            con.execute(f"copy (select * from exported order by all) to '{path}' ({options})")
            files[name] = path.read_bytes()
        return files
    finally:
        con.close()


def export(
    warehouse: Warehouse, datasets: list[Dataset], now: dt.datetime, adapter: str = ""
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Every public dataset's files and its catalog entry (without the publication's paths)."""
    entries: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    with warehouse.session() as session, tempfile.TemporaryDirectory(prefix="publish-data-") as workdir:
        reading = session.read(now)
        for described in datasets:
            dataset = with_exact_numbers(session, described, adapter)
            table = read_table(session, dataset)
            written = write_formats(table, Path(workdir))
            entries[dataset.name] = {
                "name": dataset.name,
                "description": dataset.description,
                "rows": table.num_rows,
                "columns": [
                    {
                        "name": c.name,
                        "type": export_type(c.type).logical,
                        "warehouse_type": c.type,
                        "description": c.description,
                    }
                    for c in dataset.columns
                ],
                # Of the data, not of a format: equal whenever the rows are (the JSON export, canonical).
                "content_hash": "sha256:" + hashlib.sha256(written["json"]).hexdigest(),
                "freshness": {
                    "data_through": reading.newest_event.isoformat() if reading.newest_event else None,
                    "published_at": now.isoformat().replace("+00:00", "Z"),
                },
                "files": {},
            }
            for fmt, content in written.items():
                files[f"{dataset.name}.{fmt}"] = content
                entries[dataset.name]["files"][fmt] = {
                    "bytes": len(content),
                    "sha256": hashlib.sha256(content).hexdigest(),
                }
    return entries, files


def catalog_schema() -> bytes:
    return resources.files("publication").joinpath("catalog.schema.json").read_bytes()


def publish(
    warehouse: Warehouse, docs: DocsArtifacts, target: Store, now: dt.datetime | None = None
) -> dict[str, Any]:
    now = now or dt.datetime.now(dt.UTC)
    datasets = public_datasets(docs.manifest, docs.catalog)
    if not datasets:
        raise SystemExit("no model is marked public (config: meta: {public: true}): nothing to publish")
    current = target.read_pointer(CATALOG)
    before = json.loads(current.content) if current.content else {}
    identifier = publication_id(now)
    entries, files = export(warehouse, datasets, now, docs.manifest["metadata"].get("adapter_type", ""))
    for name, content in sorted(files.items()):
        target.write(f"{PUBLICATIONS}/{identifier}/{name}", content, IMMUTABLE)
    for entry in entries.values():
        for fmt, described in entry["files"].items():
            described["path"] = f"{PUBLICATIONS}/{identifier}/{entry['name']}.{fmt}"
    previous = [before["publication"], *before.get("previous_publications", [])] if before else []
    catalog = {
        "$schema": CATALOG_SCHEMA,
        "api_version": API_VERSION,
        "publication": identifier,
        "published_at": now.isoformat().replace("+00:00", "Z"),
        "previous_publications": previous[:KEEP_PREVIOUS],
        "dbt": {
            "project": docs.manifest["metadata"].get("project_name"),
            "dbt_version": docs.manifest["metadata"].get("dbt_version"),
            "invocation_id": docs.manifest["metadata"]["invocation_id"],
            "generated_at": docs.manifest["metadata"].get("generated_at"),
        },
        "datasets": [entries[d.name] for d in datasets],
    }
    target.write(CATALOG_SCHEMA, catalog_schema(), NO_CACHE)
    target.write(OPENAPI, json.dumps(openapi.document(catalog), indent=1).encode(), NO_CACHE)
    target.write_pointer(CATALOG, json.dumps(catalog, indent=1).encode(), current)
    removed = prune(target, keep={identifier, *catalog["previous_publications"]}, newest=identifier)
    return {"catalog": catalog, "removed": removed}


def prune(target: Store, keep: set[str], newest: str) -> int:
    """Remove publications no catalog names, older than the current one (a newer one may be in flight)."""
    removed = set()
    for stored in target.list(PUBLICATIONS):
        parts = stored.key.split("/")
        if len(parts) >= 3 and parts[1] not in keep and parts[1] < newest:
            target.delete(stored.key)
            removed.add(parts[1])
    return len(removed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--to",
        default=os.environ.get("DATA_URL") or "data-out",
        help="a folder or gs://<bucket>/<prefix>; the API is under <to>/v1 (default: DATA_URL)",
    )
    parser.add_argument(
        "--docs",
        default=os.environ.get("DOCS_URL") or "docs-out",
        help="where publish-docs published (default: DOCS_URL)",
    )
    parser.add_argument("--target", default=None, help="the warehouse to read (default: DBT_TARGET)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    failpoint = os.environ.get("PUBLICATION_FAILPOINT_AFTER_WRITES")
    destination = store(args.to.rstrip("/") + f"/{API_VERSION}", int(failpoint) if failpoint else None)
    try:
        result = publish(from_environment(args.target), read_docs(store(args.docs)), destination)
    except NotPublicError as error:
        raise SystemExit(f"refused: {error}") from error
    catalog = result["catalog"]
    emit(
        {
            "catalog": f"{destination.location}/{CATALOG}",
            "publication": catalog["publication"],
            "datasets": len(catalog["datasets"]),
            "rows": sum(d["rows"] for d in catalog["datasets"]),
            "bytes": sum(f["bytes"] for d in catalog["datasets"] for f in d["files"].values()),
            "removed_publications": result["removed"],
            "seconds": round(time.monotonic() - started, 1),
        }
    )


if __name__ == "__main__":
    main()
