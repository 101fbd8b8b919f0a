"""`publish-docs`: generate the dbt docs from the warehouse dbt just built and publish them.

`dbt docs generate` compiles the project and reads the catalog (columns,
types) from the real warehouse, read-only (DuckDB lets other readers keep the
file open meanwhile). The site is dbt's own single-page app with its manifest
and catalog built in, reshaped for a public, read-only server:
- the warehouse's database names (a BigQuery project id, a DuckDB file's
  name, a Snowflake account's database) are replaced by `warehouse`
  everywhere they name a relation: no project id on a public page;
- every inline script becomes a file named by its content hash under
  `assets/`, so the viewer's CSP for `/docs/` allows scripts from its own
  origin only (`script-src 'self'`, no 'unsafe-inline');
- the assets are written first (new names, never overwritten), `index.html`
  last and conditionally (storage.Store): a reader gets the whole previous
  site or the whole new one, and a publication killed half-way leaves the
  previous site served as it was.
`manifest.json` and `catalog.json` (redacted the same way) are published
beside it for machines, `publish-data` among them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from publication.storage import IMMUTABLE, NO_CACHE, Store, store
from warehouses.results import emit

INDEX = "index.html"
ASSETS = "assets"
MANIFEST = "manifest.json"
CATALOG = "catalog.json"
REDACTED_DATABASE = "warehouse"
# An asset the current and previous pages do not name is deleted once it is this old: a reader
# who loaded a page just before it was replaced still gets the scripts it names.
ASSET_GRACE = dt.timedelta(hours=1)

INLINE_SCRIPT = re.compile(
    r"<script(?P<attributes>[^>]*)>(?P<body>.*?)</script\s*>", re.IGNORECASE | re.DOTALL
)
SCRIPT_SOURCE = re.compile(r'<script[^>]*\ssrc="(?P<src>[^"]+)"', re.IGNORECASE)
# dbt's page asks for a favicon through an unrendered template string: a request that can only 404.
BROKEN_FAVICON = re.compile(r'<link rel="shortcut icon" href="\$\{[^"]*\}"\s*/?>')
NO_FAVICON = '<link rel="icon" href="data:,">'
ANGULAR_FORM = {"xlink:href": "ng-attr-xlink:href", "src": "ng-src"}
# dbt's templates put Angular expressions in URL attributes (`<use xlink:href="{{ ... }}">`): the
# browser fetches the unrendered text before Angular fills it in, a 404 and a console error on
# every page. Angular's own forms set the attribute only once it has a value.
UNRENDERED_URL = re.compile(r'\s(xlink:href|src)="\{\{')


@dataclass(frozen=True)
class Site:
    """The files of one publication: `index.html` names every asset it needs."""

    index: bytes
    assets: dict[str, bytes]  # key under the docs prefix -> content
    manifest: bytes
    catalog: bytes

    @property
    def size(self) -> int:
        return len(self.index) + len(self.manifest) + len(self.catalog) + sum(map(len, self.assets.values()))


def read_only_profiles(profiles_dir: Path, into: Path) -> Path:
    """The project's profiles.yml with every DuckDB output opened read-only.

    Documenting reads the warehouse and writes nothing, so it opens the DuckDB
    file as one more reader, beside the dashboard and the BI snapshot, instead of
    taking the writer's lock. The profile itself is left as dbt's builds use it.
    """
    import yaml  # type: ignore[import-untyped]  # dbt's own dependency

    profiles: dict[str, Any] = yaml.safe_load((profiles_dir / "profiles.yml").read_text(encoding="utf-8"))
    for profile in profiles.values():
        outputs = profile.get("outputs") or {} if isinstance(profile, dict) else {}
        for output in outputs.values():
            if output.get("type") == "duckdb":
                options = output.get("config_options") or {}
                output["config_options"] = {**options, "access_mode": "read_only"}
    into.mkdir(parents=True, exist_ok=True)
    (into / "profiles.yml").write_text(yaml.safe_dump(profiles, sort_keys=False), encoding="utf-8")
    return into


def generate(target_path: Path) -> None:
    """`dbt docs generate` in this process (dbt is already imported by the time it would start)."""
    from dbt.cli.main import dbtRunner

    project = Path(os.environ.get("DBT_PROJECT_DIR") or ".")
    profiles_dir = Path(os.environ.get("DBT_PROFILES_DIR") or project)
    profiles = read_only_profiles(profiles_dir, target_path / "profiles")
    # Its own target and logs: the image's project folder is not writable, and a build's target stays.
    logs = os.environ.get("DBT_LOG_PATH") or str(target_path / "logs")
    arguments = ["docs", "generate", "--target-path", str(target_path), "--log-path", logs, "--quiet"]
    result = dbtRunner().invoke([*arguments, "--profiles-dir", str(profiles)])
    if not result.success:
        raise SystemExit(f"dbt docs generate failed: {result.exception or 'see the log above'}")


def database_names(manifest: Mapping[str, Any], catalog: Mapping[str, Any]) -> set[str]:
    """Every database (BigQuery: project) a relation in the artifacts lives in."""
    names: set[str] = set()
    for section in ("nodes", "sources", "seeds", "snapshots", "unit_tests", "exposures"):
        for node in (manifest.get(section) or {}).values():
            if node.get("database"):
                names.add(str(node["database"]))
    for section in ("nodes", "sources"):
        for node in (catalog.get(section) or {}).values():
            if (node.get("metadata") or {}).get("database"):
                names.add(str(node["metadata"]["database"]))
    return names


def redact(document: Any, names: Iterable[str]) -> Any:
    """The artifact with each database name replaced where it names a relation.

    A `database` field is replaced whole; elsewhere (relation names, compiled
    SQL) a name is replaced where it stands as the first part of a dotted
    relation of three parts (`"name"."schema"."table"`, `` `name`.`schema`.`table` ``
    or bare): the same word in prose, or a schema of that name, is left alone.
    """
    part = r"\s*\.\s*[\"`]?[\w$-]+[\"`]?"
    patterns = [
        # The first of three dotted parts (database.schema.table): `schema.table` is left alone.
        re.compile(r"(?<![\w$.-])([\"`]?)" + re.escape(name) + r"\1(?=" + part + part + ")")
        for name in sorted(names, key=len, reverse=True)
    ]

    def text(value: str) -> str:
        for pattern in patterns:
            value = pattern.sub(lambda m: m.group(1) + REDACTED_DATABASE + m.group(1), value)
        return value

    def walk(value: Any, key: str | None = None) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str):
            if key == "database" and value in names:
                return REDACTED_DATABASE
            return text(value)
        return value

    return walk(document)


def build_site(page: str, manifest: Mapping[str, Any], catalog: Mapping[str, Any]) -> Site:
    """dbt's `index.html` with its artifacts built in (as `--static` does) and its scripts as files."""
    manifest_json = json.dumps(manifest, separators=(",", ":"))
    catalog_json = json.dumps(catalog, separators=(",", ":"))
    assets: dict[str, bytes] = {}

    def externalise(match: re.Match[str]) -> str:
        attributes = match.group("attributes")
        if re.search(r"\ssrc\s*=", attributes, re.IGNORECASE):
            return match.group(0)
        # The data replaces dbt's placeholders inside the script, never inside HTML: a
        # description holding `</script>` cannot end a script early.
        body = match.group("body").replace('"MANIFEST.JSON INLINE DATA"', manifest_json)
        body = body.replace('"CATALOG.JSON INLINE DATA"', catalog_json)
        body = UNRENDERED_URL.sub(lambda m: f' {ANGULAR_FORM[m.group(1)]}="{{{{', body)
        content = body.encode()
        key = f"{ASSETS}/{hashlib.sha256(content).hexdigest()[:32]}.js"
        assets[key] = content
        # An inline script runs where it stands (`defer` does nothing to it); a script file
        # without `defer` or `async` runs there too, so the page runs in the same order.
        kept = re.sub(r"\s(defer|async)(=\"[^\"]*\")?", "", attributes, flags=re.IGNORECASE)
        return f'<script{kept} src="{key}"></script>'

    index = INLINE_SCRIPT.sub(externalise, page)
    index = BROKEN_FAVICON.sub(NO_FAVICON, index)
    if '"MANIFEST.JSON INLINE DATA"' not in page or not assets:
        raise SystemExit("dbt's docs page changed shape: no inline script holds the manifest placeholder")
    return Site(index.encode(), assets, manifest_json.encode(), catalog_json.encode())


def referenced_assets(index: bytes | None) -> set[str]:
    if not index:
        return set()
    return {m.group("src") for m in SCRIPT_SOURCE.finditer(index.decode(errors="replace"))}


def publish(site: Site, target: Store, now: dt.datetime | None = None) -> None:
    now = now or dt.datetime.now(dt.UTC)
    previous = target.read_pointer(INDEX)
    stored_assets = target.list(ASSETS)
    present = {stored.key for stored in stored_assets}
    for key, content in sorted(site.assets.items()):
        if key not in present:  # content-named: an asset of that name holds these bytes
            target.write(key, content, IMMUTABLE)
    target.write(MANIFEST, site.manifest, NO_CACHE)
    target.write(CATALOG, site.catalog, NO_CACHE)
    target.write_pointer(INDEX, site.index, previous)
    keep = set(site.assets) | referenced_assets(previous.content)
    for stored in stored_assets:
        if stored.key not in keep and now - stored.updated > ASSET_GRACE:
            target.delete(stored.key)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--to",
        default=os.environ.get("DOCS_URL") or "docs-out",
        help="a folder or gs://<bucket>/<prefix> (default: DOCS_URL)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dbt-docs-") as workdir:
        target_path = Path(workdir)
        generate(target_path)
        manifest = json.loads((target_path / MANIFEST).read_text(encoding="utf-8"))
        catalog = json.loads((target_path / CATALOG).read_text(encoding="utf-8"))
        page = (target_path / INDEX).read_text(encoding="utf-8")
    names = database_names(manifest, catalog)
    site = build_site(page, redact(manifest, names), redact(catalog, names))
    failpoint = os.environ.get("PUBLICATION_FAILPOINT_AFTER_WRITES")
    destination = store(args.to, int(failpoint) if failpoint else None)
    publish(site, destination)
    emit(
        {
            "docs": f"{destination.location}/{INDEX}",
            "bytes": site.size,
            "assets": len(site.assets),
            "models": sum(1 for n in manifest["nodes"].values() if n["resource_type"] == "model"),
            "seconds": round(time.monotonic() - started, 1),
        }
    )


if __name__ == "__main__":
    main()
