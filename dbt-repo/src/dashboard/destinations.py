"""Where a dashboard is published: a folder locally, a bucket prefix (`gs://bucket/dashboard`) in clusters.

Both publish the same way, so a reader (nginx, a browser, the viewer's
Cloud Storage FUSE mount) never sees half a dashboard and the one before stays
one step away:
1. the current files are copied under `previous/` (a rollback is copying them
   back);
2. each new file replaces its old one in a single atomic step (a rename in a
   folder, an object write in a bucket): the page is self-contained, so the
   page a reader gets is always a whole old one or a whole new one;
3. `index.html`, what readers open, is written last.

Two publishers racing (a retried task beside its late first try) must not
leave the older dashboard last: in a bucket each `index.html` write is
conditional on the generation read at the start, so the slower one fails
instead of overwriting the newer page (an exit code and a retry by the
task).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from publication.storage import write_atomic

INDEX = "index.html"
PREVIOUS = "previous"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".json": "application/json"}


class ConcurrentPublishError(RuntimeError):
    """Another publisher replaced the dashboard while this one was publishing."""


class Destination(Protocol):
    def publish(self, files: Mapping[str, bytes]) -> str:
        """Publish `files` (name -> content, `index.html` among them); return where the index is."""
        ...


def destination(url: str) -> Destination:
    parsed = urlparse(url)
    if parsed.scheme == "gs":
        if not parsed.netloc:
            raise SystemExit(f"{url}: expected gs://<bucket>/<prefix>")
        return BucketDestination(parsed.netloc, parsed.path.strip("/"))
    if parsed.scheme in ("", "file"):
        return FolderDestination(Path(parsed.path if parsed.scheme else url))
    raise SystemExit(f"{url}: a dashboard is published to a folder or gs://<bucket>/<prefix>")


def _ordered(files: Mapping[str, bytes]) -> list[str]:
    if INDEX not in files:
        raise ValueError("a dashboard without index.html")
    return [*sorted(name for name in files if name != INDEX), INDEX]


@dataclass
class FolderDestination:
    folder: Path

    def publish(self, files: Mapping[str, bytes]) -> str:
        previous = self.folder / PREVIOUS
        previous.mkdir(parents=True, exist_ok=True)
        for name in _ordered(files):
            current = self.folder / name
            if current.is_file():
                write_atomic(previous / name, current.read_bytes())
            write_atomic(current, files[name])
        return str((self.folder / INDEX).resolve())


@dataclass
class BucketDestination:
    bucket: str
    prefix: str
    client: Any = field(default=None, repr=False)

    def _bucket(self) -> Any:
        if self.client is None:
            from google.cloud import storage  # type: ignore[attr-defined,unused-ignore]  # untyped namespace package

            self.client = storage.Client()  # the pod's own identity (Workload Identity)
        return self.client.bucket(self.bucket)

    def _key(self, *parts: str) -> str:
        return "/".join(part for part in (self.prefix, *parts) if part)

    def publish(self, files: Mapping[str, bytes]) -> str:
        from google.api_core.exceptions import PreconditionFailed

        bucket = self._bucket()
        index = bucket.get_blob(self._key(INDEX))
        # 0: "only if it does not exist yet"; a generation: "only if nobody replaced it since".
        generation = index.generation if index is not None else 0
        for name in _ordered(files):
            current = index if name == INDEX else bucket.get_blob(self._key(name))
            if current is not None:
                bucket.copy_blob(current, bucket, self._key(PREVIOUS, name))
            blob = bucket.blob(self._key(name))
            blob.cache_control = "no-cache"
            content_type = CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")
            condition = {"if_generation_match": generation} if name == INDEX else {}
            try:
                blob.upload_from_string(files[name], content_type=content_type, **condition)
            except PreconditionFailed as error:
                raise ConcurrentPublishError(
                    f"gs://{self.bucket}/{self._key(INDEX)} changed while publishing: another publisher"
                    " ran at the same time; publish again to show the newest data"
                ) from error
        return f"gs://{self.bucket}/{self._key(INDEX)}"
