"""The dashboard everywhere (issue 24): read from any warehouse dbt builds, published to a folder or a bucket.

The bucket is the GCS client against the emulator (real HTTP, real
generations); BigQuery is the stand-in of bigquery_standin.py (each query
parsed as BigQuery SQL, capped, parameterised, answered from the same rows).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import pytest
import requests
from bigquery_standin import DuckDBBackedBigQuery

from conftest import BIN, Built
from dashboard.destinations import BucketDestination, ConcurrentPublishError, FolderDestination
from dashboard.publish import render
from dashboard.warehouse import read_snapshot
from warehouses.bigquery import BigQueryWarehouse
from warehouses.duckdb import DuckDBWarehouse

PUBLISHED_AT = "2025-03-09 06:00 UTC"


# The header's "published <minute> UTC": the one thing two publishes of one warehouse may differ in.
PUBLISHED_STAMP = re.compile(rb"published \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")


def unstamped(page: bytes) -> bytes:
    assert len(PUBLISHED_STAMP.findall(page)) == 1, "the page says when it was published, once"
    return PUBLISHED_STAMP.sub(b"published <minute> UTC", page)


def test_bigquery_and_duckdb_give_the_same_dashboard(built_warehouse: Built) -> None:
    """The same SQL through both readers: every query valid BigQuery, capped and parameterised."""
    client = DuckDBBackedBigQuery(built_warehouse.db)
    on_bigquery = read_snapshot(BigQueryWarehouse(client, maximum_bytes_billed=10**9))
    on_duckdb = read_snapshot(DuckDBWarehouse(built_warehouse.db))
    assert len(client.queries) >= 10  # totals, activity, three growth grains, two retention, miles, segments
    assert on_bigquery.layer_rows == on_duckdb.layer_rows and on_duckdb.layer_rows["fct_events"] > 0
    assert render(on_bigquery, PUBLISHED_AT) == render(on_duckdb, PUBLISHED_AT)


def publish(env: dict[str, str], to: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(BIN / "publish-dashboard"), "--to", to], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def objects(bucket: Any) -> dict[str, bytes]:
    return {blob.name: blob.download_as_bytes() for blob in bucket.list_blobs()}


def test_the_publisher_writes_the_bucket_the_environment_names_and_keeps_the_previous_one(
    gcs: str, built_warehouse: Built, tmp_path: Path
) -> None:
    from google.cloud import storage

    bucket = storage.Client().create_bucket("dashboards")
    env = {
        **os.environ,
        "DBT_DUCKDB_PATH": str(built_warehouse.db),
        "DASHBOARD_URL": "gs://dashboards/dashboard",
    }
    first = publish(env, "gs://dashboards/dashboard")
    assert first["dashboard"] == "gs://dashboards/dashboard/index.html"
    published = objects(bucket)
    assert set(published) == {"dashboard/index.html", "dashboard/summary.json"}
    index = bucket.get_blob("dashboard/index.html")
    assert index.content_type.startswith("text/html") and index.cache_control == "no-cache"
    # The same page a folder gets from the same warehouse (only the minute it was made may differ).
    local = publish(env, str(tmp_path / "folder"))
    assert unstamped(Path(local["dashboard"]).read_bytes()) == unstamped(published["dashboard/index.html"])
    summary = json.loads(published["dashboard/summary.json"])
    assert summary["layer_rows"]["fct_events"] == summary["totals"]["events"]

    # Again: the page before stays one copy away, whole.
    publish(env, "gs://dashboards/dashboard")
    again = objects(bucket)
    assert again["dashboard/previous/index.html"] == published["dashboard/index.html"]
    assert again["dashboard/previous/summary.json"] == published["dashboard/summary.json"]


class RacedFiles(Mapping[str, bytes]):
    """The files to publish; reading index.html's content first lets a competing publisher finish."""

    def __init__(self, files: dict[str, bytes], competitor: Any) -> None:
        self.files, self.competitor = files, competitor

    def __getitem__(self, name: str) -> bytes:
        if name == "index.html" and self.competitor is not None:
            competitor, self.competitor = self.competitor, None
            competitor()
        return self.files[name]

    def __iter__(self) -> Any:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)


class GenerationCheckingSession(requests.Session):
    """GCS's write preconditions, which the emulator ignores, enforced in front of it.

    Cloud Storage refuses a write whose `ifGenerationMatch` is not the object's
    current generation (0: the object must not exist) with 412. The emulator
    accepts every write, so this session (the client's HTTP transport) checks
    that rule against the emulator's own generation before passing a write on,
    and answers 412 as GCS would; every write is recorded.
    """

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[str, str | None]] = []  # (object, ifGenerationMatch)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if method == "POST" and "/upload/storage/v1/b/" in url:
            query = parse_qs(urlparse(url).query)
            body = kwargs.get("data") or b""
            name = re.search(rb'"name": ?"([^"]+)"', body if isinstance(body, bytes) else body.encode())
            assert name, "a write whose object name the check cannot read"
            wanted = query.get("ifGenerationMatch", [None])[0]
            self.writes.append((name.group(1).decode(), wanted))
            if wanted is not None:
                bucket = url.split("/b/", 1)[1].split("/", 1)[0]
                key = quote(name.group(1).decode(), safe="")
                emulator = os.environ["STORAGE_EMULATOR_HOST"]
                current = super().request("GET", f"{emulator}/storage/v1/b/{bucket}/o/{key}")
                generation = current.json()["generation"] if current.status_code == 200 else "0"
                if str(generation) != wanted:
                    refused = requests.Response()
                    refused.status_code, refused.url = 412, url
                    refused.request = requests.Request(method, url).prepare()
                    refused._content = b'{"error": {"code": 412, "message": "conditionNotMet"}}'
                    refused.headers["content-type"] = "application/json"
                    return refused
        return super().request(method, url, *args, **kwargs)


def test_a_slower_publisher_never_replaces_a_newer_dashboard_in_the_bucket(gcs: str) -> None:
    from google.cloud import storage

    session = GenerationCheckingSession()
    client = storage.Client(_http=session)
    bucket = client.create_bucket("raced")
    target = BucketDestination("raced", "dashboard", client)
    target.publish({"index.html": b"<p>monday</p>", "summary.json": b"{}"})
    assert ("dashboard/index.html", "0") in session.writes  # the first: only if there was none
    newer = {"index.html": b"<p>wednesday, the retry</p>", "summary.json": b'{"retry": true}'}

    def competitor() -> None:
        BucketDestination("raced", "dashboard", storage.Client(_http=GenerationCheckingSession())).publish(
            newer
        )

    slower = RacedFiles(
        {"index.html": b"<p>tuesday, the late first try</p>", "summary.json": b"{}"}, competitor
    )
    with pytest.raises(ConcurrentPublishError, match="another publisher"):
        target.publish(slower)
    # The newer page stays; the slower one's precondition named the generation it had read.
    assert bucket.get_blob("dashboard/index.html").download_as_bytes() == newer["index.html"]
    index_writes = [wanted for name, wanted in session.writes if name == "dashboard/index.html"]
    assert len(index_writes) == 2 and all(wanted is not None for wanted in index_writes)


def test_a_folder_publication_replaces_each_file_whole_and_keeps_the_previous_one(tmp_path: Path) -> None:
    folder = FolderDestination(tmp_path / "dashboard")
    folder.publish({"index.html": b"<p>one</p>", "summary.json": b"1"})
    assert not (tmp_path / "dashboard" / "previous" / "index.html").exists()
    folder.publish({"index.html": b"<p>two</p>", "summary.json": b"2"})
    assert (tmp_path / "dashboard" / "index.html").read_bytes() == b"<p>two</p>"
    assert (tmp_path / "dashboard" / "previous" / "index.html").read_bytes() == b"<p>one</p>"
    assert (tmp_path / "dashboard" / "previous" / "summary.json").read_bytes() == b"1"
    # No temporary file is left beside what nginx serves.
    assert sorted(p.name for p in (tmp_path / "dashboard").iterdir()) == [
        "index.html",
        "previous",
        "summary.json",
    ]
