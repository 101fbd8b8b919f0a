"""dbt's run_results.json files, wherever the runs left them (DBT_ARTIFACTS_URL).

Locally Airflow's dbt tasks copy them to a folder (`file://...`); in clusters
each dbt pod uploads its own through `dbt-keep-artifacts` (`gs://...`), under
a folder per UTC day (`<prefix>/YYYY-MM-DD/...`). Only files from the last
`max_age` are read, and each file is read once (files never change once
written), so a scrape costs a listing, not a download of every run there
ever was. Both stay bounded as runs accumulate (about 5,800 results a day in
production): on GCS only the folders of the days within `max_age` are
listed, and a file that left the listing (aged out or removed by the
bucket's lifecycle rule, `environments/bucket-lifecycle.json`)
leaves the cache.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger(__name__)
RESULTS = "run_results.json"


@dataclass(eq=False)
class ArtifactStore:
    url: str
    max_age: dt.timedelta = dt.timedelta(days=8)
    _documents: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict, init=False)
    _client: Any = field(default=None, init=False)

    def documents(self) -> Iterator[dict[str, Any]]:
        """Every readable run_results.json younger than max_age (unreadable ones are logged and skipped)."""
        since = dt.datetime.now(dt.UTC) - self.max_age
        listed: set[tuple[str, str]] = set()
        for key, read in self._listing(since):
            listed.add(key)
            if key not in self._documents:
                try:
                    self._documents[key] = json.loads(read())
                except (OSError, ValueError) as error:
                    log.warning("skipping unreadable %s: %s", key[0], error)
                    self._documents[key] = None
            if (document := self._documents[key]) is not None:
                yield document
        # What aged out of the window, or was removed, is not kept for ever.
        for key in self._documents.keys() - listed:
            del self._documents[key]

    @property
    def cached(self) -> int:
        return len(self._documents)

    def _listing(self, since: dt.datetime) -> Iterator[tuple[tuple[str, str], Any]]:
        parsed = urlparse(self.url)
        if parsed.scheme == "gs":
            yield from self._gcs_listing(parsed.netloc, parsed.path.lstrip("/"), since)
            return
        folder = Path(parsed.path if parsed.scheme == "file" else self.url)
        if not folder.is_dir():
            return
        for path in folder.rglob(RESULTS):
            stat = path.stat()
            if dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC) >= since:
                yield (str(path), str(stat.st_mtime_ns)), path.read_bytes

    def _gcs_listing(self, bucket: str, prefix: str, since: dt.datetime) -> Iterator[Any]:
        """The blobs of the day folders within the window only: a listing of the whole prefix
        would grow with every run ever kept."""
        if self._client is None:
            from google.cloud import storage  # type: ignore[attr-defined,unused-ignore]  # untyped namespace package

            self._client = storage.Client()
        base = prefix.strip("/")
        today = dt.datetime.now(dt.UTC).date()
        for offset in range((today - since.date()).days + 1):
            day = (today - dt.timedelta(days=offset)).isoformat()
            folder = f"{base}/{day}/" if base else f"{day}/"
            for blob in self._client.list_blobs(bucket, prefix=folder):
                if blob.name.endswith(RESULTS) and blob.updated is not None and blob.updated >= since:
                    yield (f"gs://{bucket}/{blob.name}", str(blob.generation)), blob.download_as_bytes


def upload(target: Path, url: str, folder: str, names: tuple[str, ...] = (RESULTS, "sources.json")) -> int:
    """Copy dbt's result files from `target` to `url/folder/`; how many were copied."""
    parsed = urlparse(url)
    present = [target / name for name in names if (target / name).is_file()]
    if parsed.scheme == "gs":
        from google.cloud import storage  # type: ignore[attr-defined,unused-ignore]  # untyped namespace package

        bucket = storage.Client().bucket(parsed.netloc)
        prefix = "/".join(part for part in (parsed.path.strip("/"), folder) if part)
        for path in present:
            blob = bucket.blob(f"{prefix}/{path.name}")
            blob.upload_from_filename(str(path), content_type="application/json")
        return len(present)
    destination = Path(parsed.path if parsed.scheme == "file" else url) / folder
    destination.mkdir(parents=True, exist_ok=True)
    for path in present:
        (destination / path.name).write_bytes(path.read_bytes())
    return len(present)
