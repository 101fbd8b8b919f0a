"""The landing bucket: a local folder by default, GCS in production.

Every object is written whole or not at all (temp file + rename locally; GCS
uploads are atomic per object), which is what lets a manifest written last act
as the commit point of an extract. Writers that may race (two extracts of one
interval, two stream consumers) compare and swap: `write_if` writes only if
the object is still the version they read (a GCS generation precondition; an
exclusive lock and the content's digest locally).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse


class Bucket(Protocol):
    url: str

    def write_bytes(self, key: str, data: bytes) -> None: ...

    def read_bytes(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str) -> list[str]: ...

    def delete(self, key: str) -> None: ...

    def local_path(self, key: str) -> Path:
        """A path on this machine holding the object, for readers that need files."""
        ...

    def read_versioned(self, key: str) -> tuple[bytes | None, str]:
        """The object (None when absent) and its generation ("0" when absent), read together."""
        ...

    def write_if(self, key: str, data: bytes, generation: str) -> str | None:
        """Write only if the object is still at `generation` ("0": absent).

        Returns the new generation, or None when another writer moved it on.
        """
        ...

    def delete_if(self, key: str, generation: str) -> bool:
        """Delete only if the object is still at `generation`; False when it moved on or is gone."""
        ...

    def age_seconds(self, key: str) -> float:
        """Seconds since the object was last written."""
        ...


class LocalBucket:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"key {key!r} escapes the bucket")
        return path

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(
            str(p.relative_to(self.root))
            for p in base.rglob("*")
            if p.is_file() and not any(part.startswith(".tmp-") for part in p.relative_to(self.root).parts)
        )

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        # Folders are only a local artefact (object stores have none): drop those left empty.
        for folder in path.parents:
            if folder == self.root or not folder.is_dir() or any(folder.iterdir()):
                break
            folder.rmdir()

    def local_path(self, key: str) -> Path:
        return self._path(key)

    def read_versioned(self, key: str) -> tuple[bytes | None, str]:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None, "0"
        return data, hashlib.sha256(data).hexdigest()

    def write_if(self, key: str, data: bytes, generation: str) -> str | None:
        """Compare-and-swap under an exclusive lock beside the object (writers on one machine or NFS)."""
        self._path(key).parent.mkdir(parents=True, exist_ok=True)
        with self._locked(key):
            if self.read_versioned(key)[1] != generation:
                return None
            self.write_bytes(key, data)
            return hashlib.sha256(data).hexdigest()

    def delete_if(self, key: str, generation: str) -> bool:
        with self._locked(key):
            if generation == "0" or self.read_versioned(key)[1] != generation:
                return False
            self.delete(key)
            return True

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        # Locks live apart from the objects: a day folder holds only what was written there, so
        # deleting its objects (retention) leaves no folder behind.
        locks = self.root / ".tmp-locks"
        locks.mkdir(exist_ok=True)
        with (locks / hashlib.sha256(key.encode()).hexdigest()).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def age_seconds(self, key: str) -> float:
        return time.time() - self._path(key).stat().st_mtime


class GCSBucket:
    """`gs://bucket/prefix` through google-cloud-storage.

    Credentials come from Application Default Credentials (Workload Identity
    on GKE). With STORAGE_EMULATOR_HOST set, the client talks to that emulator
    anonymously, which is how the tests run it for real over HTTP.
    """

    def __init__(self, name: str, prefix: str = "", client: Any = None) -> None:
        from google.cloud import storage  # type: ignore[attr-defined,unused-ignore]  # untyped namespace package

        if client is None:
            from extract_load.settings import settings

            config = settings()
            if config.storage_emulator_host:
                from google.auth.credentials import AnonymousCredentials

                client = storage.Client(
                    project=config.google_cloud_project or "emulator",
                    credentials=AnonymousCredentials(),
                )
            else:
                client = storage.Client()
        self._bucket = client.bucket(name)
        self._prefix = prefix.strip("/")
        self.url = f"gs://{name}" + (f"/{self._prefix}" if self._prefix else "")
        self._cache = Path(tempfile.mkdtemp(prefix="gcs-cache-"))

    def _name(self, key: str) -> str:
        if ".." in key.split("/"):
            raise ValueError(f"key {key!r} escapes the bucket")
        return f"{self._prefix}/{key}" if self._prefix else key

    def write_bytes(self, key: str, data: bytes) -> None:
        # A GCS upload is atomic per object: readers see the old object or the new one.
        self._bucket.blob(self._name(key)).upload_from_string(data, content_type="application/octet-stream")

    def read_bytes(self, key: str) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            return self._bucket.blob(self._name(key)).download_as_bytes()
        except NotFound as exc:  # as a local bucket says it: callers handle one error
            raise FileNotFoundError(f"{self.url}/{key}") from exc

    def exists(self, key: str) -> bool:
        return bool(self._bucket.blob(self._name(key)).exists())

    def list(self, prefix: str) -> list[str]:
        full = self._name(prefix).rstrip("/") + "/"
        strip = len(self._prefix) + 1 if self._prefix else 0
        return sorted(blob.name[strip:] for blob in self._bucket.client.list_blobs(self._bucket, prefix=full))

    def delete(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        with contextlib.suppress(NotFound):
            self._bucket.blob(self._name(key)).delete()

    def read_versioned(self, key: str) -> tuple[bytes | None, str]:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        for _ in range(5):
            blob = self._bucket.get_blob(self._name(key))
            if blob is None:
                return None, "0"
            generation = blob.generation  # before the download, which may reset it from the headers
            try:  # the bytes of exactly that generation, or read again
                return blob.download_as_bytes(if_generation_match=generation), str(generation)
            except (NotFound, PreconditionFailed):
                continue
        raise RuntimeError(f"{self.url}/{key} keeps changing while read")

    def write_if(self, key: str, data: bytes, generation: str) -> str | None:
        """A GCS generation precondition: the service refuses the upload if another writer came first."""
        from google.api_core.exceptions import PreconditionFailed

        blob = self._bucket.blob(self._name(key))
        try:
            blob.upload_from_string(
                data, content_type="application/octet-stream", if_generation_match=int(generation)
            )
        except PreconditionFailed:
            return None
        return str(blob.generation)

    def delete_if(self, key: str, generation: str) -> bool:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        if generation == "0":
            return False
        try:
            self._bucket.blob(self._name(key)).delete(if_generation_match=int(generation))
        except (NotFound, PreconditionFailed):
            return False
        return True

    def age_seconds(self, key: str) -> float:
        blob = self._bucket.get_blob(self._name(key))
        if blob is None or blob.updated is None:
            return 0.0
        return (dt.datetime.now(dt.UTC) - blob.updated).total_seconds()

    def local_path(self, key: str) -> Path:
        """Download to a private cache: DuckDB reads local files; BigQuery loads from gs:// directly."""
        path = self._cache / key
        path.parent.mkdir(parents=True, exist_ok=True)
        self._bucket.blob(self._name(key)).download_to_filename(str(path))
        return path


def open_bucket(url: str) -> Bucket:
    """`file:///abs/path`, a plain path, or `gs://bucket[/prefix]`."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return LocalBucket(Path(parsed.path if parsed.scheme else url))
    if parsed.scheme == "gs":
        return GCSBucket(parsed.netloc, parsed.path)
    raise ValueError(f"unsupported bucket URL scheme {parsed.scheme!r} in {url!r}")
