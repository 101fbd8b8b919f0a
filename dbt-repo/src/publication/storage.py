"""Where a publication is written: a folder locally, a bucket prefix (`gs://bucket/data`) in clusters.

Both give what an atomic publication needs and nothing more:
- `write` replaces one object whole (a rename in a folder, an object upload
  in a bucket), so a reader gets an old or a new file, never half of one;
- `write_pointer` replaces the one object that says which files are current
  (the docs' `index.html`, the data's `catalog.json`) only if nobody
  replaced it since it was read (a generation precondition in a bucket, a
  lock and a re-read in a folder), so of two racing publishers the slower
  fails instead of putting older data back;
- `list` and `delete`, for removing what no pointer names any more.

A failpoint (PUBLICATION_FAILPOINT_AFTER_WRITES=N) kills the process after
its Nth write: the tests use it to stop a publication half-way for real.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

# Files a reader fetches again on every visit (with a conditional request) and files that never change.
NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".parquet": "application/vnd.apache.parquet",
}


class ConcurrentPublishError(RuntimeError):
    """Another publisher replaced the pointer while this one was publishing."""


@dataclass(frozen=True)
class Pointer:
    """The pointer as read before publishing: its content, and what a conditional write compares."""

    content: bytes | None
    generation: int  # 0: it did not exist


@dataclass(frozen=True)
class Stored:
    key: str
    updated: dt.datetime


def content_type(key: str) -> str:
    return CONTENT_TYPES.get(Path(key).suffix, "application/octet-stream")


class Store(Protocol):
    @property
    def location(self) -> str: ...

    def read_pointer(self, key: str) -> Pointer: ...

    def read(self, key: str) -> bytes | None: ...

    def write(self, key: str, content: bytes, cache_control: str) -> None: ...

    def write_pointer(self, key: str, content: bytes, expected: Pointer) -> None: ...

    def list(self, prefix: str) -> list[Stored]: ...

    def delete(self, key: str) -> None: ...


def store(url: str, failpoint_after_writes: int | None = None) -> Store:
    parsed = urlparse(url)
    if parsed.scheme == "gs":
        if not parsed.netloc:
            raise SystemExit(f"{url}: expected gs://<bucket>/<prefix>")
        return BucketStore(parsed.netloc, parsed.path.strip("/"), Failpoint(failpoint_after_writes))
    if parsed.scheme in ("", "file"):
        return FolderStore(Path(parsed.path if parsed.scheme else url), Failpoint(failpoint_after_writes))
    raise SystemExit(f"{url}: a publication goes to a folder or gs://<bucket>/<prefix>")


@dataclass
class Failpoint:
    after_writes: int | None
    writes: int = 0

    def wrote(self) -> None:
        self.writes += 1
        if self.after_writes is not None and self.writes >= self.after_writes:
            os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class FolderStore:
    folder: Path
    failpoint: Failpoint = field(default_factory=lambda: Failpoint(None))

    @property
    def location(self) -> str:
        return str(self.folder.resolve())

    def read_pointer(self, key: str) -> Pointer:
        path = self.folder / key
        if not path.is_file():
            return Pointer(None, 0)
        return Pointer(path.read_bytes(), path.stat().st_mtime_ns)

    def read(self, key: str) -> bytes | None:
        path = self.folder / key
        return path.read_bytes() if path.is_file() else None

    def write(self, key: str, content: bytes, cache_control: str) -> None:
        write_atomic(self.folder / key, content)
        self.failpoint.wrote()

    def write_pointer(self, key: str, content: bytes, expected: Pointer) -> None:
        with self._locked():
            if self.read_pointer(key).content != expected.content:
                raise ConcurrentPublishError(
                    f"{self.folder / key} changed while publishing: another publisher ran at the same time"
                )
            self.write(key, content, NO_CACHE)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / ".publish.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def list(self, prefix: str) -> list[Stored]:
        root = self.folder / prefix
        if not root.is_dir():
            return []
        return [
            Stored(
                str(path.relative_to(self.folder)), dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
            )
            for path in sorted(root.rglob("*"))
            if path.is_file() and not path.name.startswith(".")
        ]

    def delete(self, key: str) -> None:
        path = self.folder / key
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # the folder it leaves, if empty
            path.parent.rmdir()


def write_atomic(path: Path, content: bytes) -> None:
    """Write beside, flush to disk, rename over: readers (nginx, a FUSE mount) see old or new, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.chmod(0o644)  # served by another user (the viewer)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


@dataclass
class BucketStore:
    bucket_name: str
    prefix: str
    failpoint: Failpoint = field(default_factory=lambda: Failpoint(None))
    client: Any = field(default=None, repr=False)

    @property
    def location(self) -> str:
        return f"gs://{self.bucket_name}/{self.prefix}".rstrip("/")

    def _bucket(self) -> Any:
        if self.client is None:
            from google.cloud import storage  # type: ignore[attr-defined,unused-ignore]  # untyped namespace package

            self.client = storage.Client()  # the pod's own identity (Workload Identity)
        return self.client.bucket(self.bucket_name)

    def _key(self, key: str) -> str:
        return "/".join(part for part in (self.prefix, key) if part)

    def read_pointer(self, key: str) -> Pointer:
        blob = self._bucket().get_blob(self._key(key))
        if blob is None:
            return Pointer(None, 0)
        generation = int(blob.generation)  # before the download, which may reset the blob's properties
        return Pointer(blob.download_as_bytes(if_generation_match=generation), generation)

    def read(self, key: str) -> bytes | None:
        blob = self._bucket().get_blob(self._key(key))
        return None if blob is None else blob.download_as_bytes()

    def _upload(self, key: str, content: bytes, cache_control: str, **condition: Any) -> None:
        blob = self._bucket().blob(self._key(key))
        blob.cache_control = cache_control
        blob.upload_from_string(content, content_type=content_type(key), **condition)
        self.failpoint.wrote()

    def write(self, key: str, content: bytes, cache_control: str) -> None:
        self._upload(key, content, cache_control)

    def write_pointer(self, key: str, content: bytes, expected: Pointer) -> None:
        from google.api_core.exceptions import PreconditionFailed

        try:
            # 0: "only if it does not exist yet"; a generation: "only if nobody replaced it since".
            self._upload(key, content, NO_CACHE, if_generation_match=expected.generation)
        except PreconditionFailed as error:
            raise ConcurrentPublishError(
                f"{self.location}/{key} changed while publishing: another publisher ran at the same time"
            ) from error

    def list(self, prefix: str) -> list[Stored]:
        start = self._key(prefix).rstrip("/") + "/"
        cut = len(self.prefix) + 1 if self.prefix else 0
        return [
            Stored(blob.name[cut:], blob.updated)
            for blob in self._bucket().list_blobs(prefix=start)
            if not blob.name.endswith("/")
        ]

    def delete(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        with contextlib.suppress(NotFound):
            self._bucket().blob(self._key(key)).delete()
