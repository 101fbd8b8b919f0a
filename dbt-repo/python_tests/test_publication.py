"""The dbt docs site and the public data exports (issue 27), published by the real CLIs.

`publish-docs` runs `dbt docs generate` against a built DuckDB warehouse;
`publish-data` reads the docs it published and the warehouse, and writes the
versioned exports. Both to a folder and to a bucket (the GCS client against the
emulator). What is checked is what a consumer relies on: every number equals
the warehouse's, the catalog and the OpenAPI document validate, no user-level
table or column and no database name leaves, and a publication killed half-way
(SIGKILL from a failpoint) leaves the previous one readable, whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from publication import docs as docs_module
from publication.datasets import NotPublicError, public_datasets
from publication.exports import CATALOG, read_docs
from publication.exports import publish as publish_exports
from publication.storage import BucketStore, ConcurrentPublishError, FolderStore, store
from publication.types import export_type
from publication_checks import USER_LEVEL, check_publication

from conftest import BIN, BUILD, PROJECT_DIR, RAW_DDL, dbt_runner, fixture_rows, insert_raw
from warehouses.duckdb import DuckDBWarehouse

# A database name that must never reach a public file (a BigQuery project id would be one).
PRIVATE_DATABASE = "acme_prod_4711"


@pytest.fixture(scope="module")
def warehouse_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A built warehouse whose name would give its project away (DuckDB: the file's stem)."""
    workdir = tmp_path_factory.mktemp("named")
    path = workdir / f"{PRIVATE_DATABASE}.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(RAW_DDL)
    insert_raw(path, fixture_rows())
    result = dbt_runner(path, workdir)(*BUILD)
    assert result.returncode == 0, result.stdout[-3000:]
    return path


def environment(db: Path, workdir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DBT_DUCKDB_PATH": str(db),
        "DBT_PROJECT_DIR": str(PROJECT_DIR),
        "DBT_PROFILES_DIR": str(PROJECT_DIR),
        "DBT_LOG_PATH": str(workdir / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        **extra,
    }


def run(program: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / program), *args], env=env, capture_output=True, text=True, check=False, timeout=600
    )


def published(program: str, env: dict[str, str], *args: str) -> dict[str, Any]:
    done = run(program, env, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def site(warehouse_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Docs and data published once to a folder, as the pipeline does: docs first, then data."""
    root = tmp_path_factory.mktemp("site")
    env = environment(warehouse_file, root)
    # Another reader holds the file (the dashboard, the BI snapshot): the docs read beside it.
    with duckdb.connect(str(warehouse_file), read_only=True):
        docs = published("publish-docs", env, "--to", str(root / "docs"))
    assert docs["docs"].endswith("docs/index.html") and docs["models"] >= 13
    data = published("publish-data", env, "--to", str(root / "data"), "--docs", str(root / "docs"))
    assert data["datasets"] >= 9 and data["rows"] > 0
    return root


def catalog_of(root: Path) -> dict[str, Any]:
    return json.loads((root / "data" / "v1" / CATALOG).read_text())


def test_the_docs_page_runs_only_scripts_from_its_own_origin(site: Path) -> None:
    index = (site / "docs" / "index.html").read_text()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", index, re.DOTALL)
    assert scripts and all('src="assets/' in attributes and not body.strip() for attributes, body in scripts)
    for src in re.findall(r'src="(assets/[^"]+)"', index):
        content = (site / "docs" / src).read_bytes()
        assert src == f"assets/{hashlib.sha256(content).hexdigest()[:32]}.js"  # named for what it holds
    # The manifest and catalog are built in (no request for them), with the exposure's lineage.
    assets = "".join(p.read_text() for p in (site / "docs" / "assets").iterdir())
    assert (
        "MANIFEST.JSON INLINE DATA" not in assets
        and "exposure.platform.user_activity_and_attrition" in assets
    )
    manifest = json.loads((site / "docs" / "manifest.json").read_text())
    exposure = manifest["exposures"]["exposure.platform.user_activity_and_attrition"]
    assert "model.platform.growth_accounting_weekly" in exposure["depends_on"]["nodes"]


def test_no_database_name_reaches_a_public_file(site: Path, warehouse_file: Path) -> None:
    """The warehouse's database (here the DuckDB file's name; a BigQuery project id in clusters)."""
    files = [p for p in site.rglob("*") if p.is_file() and "logs" not in p.parts]
    assert len(files) > 20
    for path in files:
        assert PRIVATE_DATABASE.encode() not in path.read_bytes(), path
    manifest = json.loads((site / "docs" / "manifest.json").read_text())
    node = manifest["nodes"]["model.platform.growth_accounting_weekly"]
    assert node["database"] == "warehouse" and node["relation_name"].startswith('"warehouse".')


def test_every_exported_number_equals_the_warehouse_and_the_documents_validate(
    site: Path, warehouse_file: Path
) -> None:
    v1 = site / "data" / "v1"
    with duckdb.connect(str(warehouse_file), read_only=True) as con:
        catalog = check_publication(lambda path: (v1 / path).read_bytes(), con)
    names = {d["name"] for d in catalog["datasets"]}
    assert {"growth_accounting_weekly", "user_activity_daily", "retention_cohorts_monthly"} <= names
    assert all(d["rows"] > 0 for d in catalog["datasets"])
    # Bookkeeping columns stay out (the yml's `public: false`).
    assert not [c for d in catalog["datasets"] for c in d["columns"] if c["name"] == "loads_digest"]


def test_a_model_with_user_level_rows_is_never_exported_even_when_marked_public(site: Path) -> None:
    manifest = json.loads((site / "docs" / "manifest.json").read_text())
    catalog = json.loads((site / "docs" / "catalog.json").read_text())
    assert [d.name for d in public_datasets(manifest, catalog)]  # as published: fine
    for name in USER_LEVEL:
        node = manifest["nodes"][f"model.platform.{name}"]
        # Marked public, and its own `personal` flag removed too: its user_id column still refuses it.
        node["config"]["meta"] = {"public": True}
        node["meta"] = {}
        with pytest.raises(NotPublicError, match=name):
            public_datasets(manifest, catalog)
        node["config"]["meta"] = node["meta"] = {"personal": True}


def test_the_cli_refuses_a_user_level_model_and_leaves_the_publication(
    site: Path, warehouse_file: Path, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(site / "docs", docs)
    manifest = json.loads((docs / "manifest.json").read_text())
    manifest["nodes"]["model.platform.dim_users"]["config"]["meta"] = {"public": True}
    (docs / "manifest.json").write_text(json.dumps(manifest))
    data = tmp_path / "data"
    shutil.copytree(site / "data", data)
    before = (data / "v1" / CATALOG).read_bytes()
    done = run("publish-data", environment(warehouse_file, tmp_path), "--to", str(data), "--docs", str(docs))
    assert done.returncode != 0 and "refused: dim_users" in done.stderr
    assert (data / "v1" / CATALOG).read_bytes() == before
    assert not list((data / "v1").rglob("dim_users*"))


def served_whole(v1: Path) -> dict[str, Any]:
    """What a reader of `v1` gets: the catalog, and every file it names, whole."""
    catalog = json.loads((v1 / CATALOG).read_text())
    for dataset in catalog["datasets"]:
        for described in dataset["files"].values():
            assert hashlib.sha256((v1 / described["path"]).read_bytes()).hexdigest() == described["sha256"]
    return catalog


def test_a_data_publication_killed_half_way_leaves_the_previous_one_served(
    site: Path, warehouse_file: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(site / "data", data)
    v1 = data / "v1"
    before = served_whole(v1)
    env = environment(warehouse_file, tmp_path)
    args = ("--to", str(data), "--docs", str(site / "docs"))
    killed = run("publish-data", {**env, "PUBLICATION_FAILPOINT_AFTER_WRITES": "4"}, *args)
    assert killed.returncode == -signal.SIGKILL
    assert served_whole(v1) == before
    started = sorted(p.name for p in (v1 / "publications").iterdir())
    assert len(started) == 2  # the killed one left files no catalog names
    # The next publication completes, keeps the one before for readers who hold its catalog,
    # and removes the killed one's files.
    after = published("publish-data", env, *args)
    catalog = served_whole(v1)
    assert catalog["publication"] == after["publication"] != before["publication"]
    assert catalog["previous_publications"] == [before["publication"]]
    assert after["removed_publications"] == 1
    assert sorted(p.name for p in (v1 / "publications").iterdir()) == sorted(
        [before["publication"], after["publication"]]
    )
    # Equal data, equal files: a consumer can tell nothing changed from the hashes.
    assert [d["content_hash"] for d in catalog["datasets"]] == [d["content_hash"] for d in before["datasets"]]


def test_a_docs_publication_killed_half_way_leaves_the_previous_site(
    site: Path, warehouse_file: Path, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(site / "docs", docs)
    before = {p.relative_to(docs): p.read_bytes() for p in docs.rglob("*") if p.is_file()}
    env = environment(warehouse_file, tmp_path, PUBLICATION_FAILPOINT_AFTER_WRITES="2")
    killed = run("publish-docs", env, "--to", str(docs))
    assert killed.returncode == -signal.SIGKILL
    index = (docs / "index.html").read_bytes()
    assert index == before[Path("index.html")]
    for src in docs_module.referenced_assets(index):
        assert (docs / src).read_bytes() == before[Path(src)]


def test_publications_on_a_bucket_and_a_slower_publisher_never_wins(
    gcs: str, site: Path, warehouse_file: Path, tmp_path: Path
) -> None:
    from google.cloud import storage
    from test_dashboard_publish import GenerationCheckingSession

    client = storage.Client(_http=GenerationCheckingSession())
    bucket = client.create_bucket("public-site")
    env = environment(warehouse_file, tmp_path)
    published("publish-docs", env, "--to", "gs://public-site/docs")
    first = published("publish-data", env, "--to", "gs://public-site/data", "--docs", "gs://public-site/docs")
    names = {blob.name for blob in bucket.list_blobs()}
    assert {"docs/index.html", "docs/manifest.json", "data/v1/catalog.json", "data/v1/openapi.json"} <= names
    catalog_blob = bucket.get_blob("data/v1/catalog.json")
    assert catalog_blob.cache_control == "no-cache" and catalog_blob.content_type == "application/json"
    part = bucket.get_blob(f"data/v1/publications/{first['publication']}/miles_economy.parquet")
    assert part.cache_control == "public, max-age=31536000, immutable"
    for blob in bucket.list_blobs():
        assert PRIVATE_DATABASE.encode() not in blob.download_as_bytes(), blob.name

    # A slower publisher read the catalog before a newer one replaced it: it fails, the newer stays.
    warehouse = DuckDBWarehouse(warehouse_file)
    artifacts = read_docs(store("gs://public-site/docs"))
    slow = BucketStore("public-site", "data/v1", client=storage.Client(_http=GenerationCheckingSession()))
    stale = slow.read_pointer(CATALOG)
    newer = publish_exports(warehouse, artifacts, store("gs://public-site/data/v1"))
    with pytest.raises(ConcurrentPublishError, match="another publisher"):
        slow.write_pointer(CATALOG, b"{}", stale)
    current = json.loads(bucket.get_blob("data/v1/catalog.json").download_as_bytes())
    assert current["publication"] == newer["catalog"]["publication"]


def test_a_folder_pointer_is_compare_and_swap(tmp_path: Path) -> None:
    target = FolderStore(tmp_path)
    seen = target.read_pointer("catalog.json")
    target.write_pointer("catalog.json", b"one", seen)
    with pytest.raises(ConcurrentPublishError):
        target.write_pointer("catalog.json", b"two", seen)
    assert (tmp_path / "catalog.json").read_bytes() == b"one"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    ("warehouse_type", "logical"),
    [
        ("BIGINT", "integer"),
        ("INT64", "integer"),
        ("NUMBER(38,0)", "integer"),
        ("DECIMAL(38,4)", "decimal(38,4)"),
        ("numeric", "decimal(38,9)"),
        ("double precision", "float"),
        ("FLOAT64", "float"),
        ("character varying(64)", "string"),
        ("DATE", "date"),
        ("TIMESTAMP_NTZ", "timestamp"),
        ("timestamp with time zone", "timestamp_utc"),
    ],
)
def test_every_warehouse_type_exports_as_one_portable_type(warehouse_type: str, logical: str) -> None:
    assert export_type(warehouse_type).logical == logical


def test_a_type_without_an_export_is_an_error_not_text() -> None:
    with pytest.raises(ValueError, match="no export type"):
        export_type("GEOGRAPHY")


def test_redaction_leaves_the_same_word_in_prose(tmp_path: Path) -> None:
    document = {
        "database": "analytics",
        "relation_name": '"analytics"."analytics"."x"',
        "compiled_code": "select * from `analytics`.analytics.x join analytics.y",
        "description": "The analytics layer.",
    }
    redacted: Callable[..., Any] = docs_module.redact
    assert redacted(document, {"analytics"}) == {
        "database": "warehouse",
        "relation_name": '"warehouse"."analytics"."x"',
        "compiled_code": "select * from `warehouse`.analytics.x join analytics.y",
        "description": "The analytics layer.",
    }
