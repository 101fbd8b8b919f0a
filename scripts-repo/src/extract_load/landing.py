"""Landing one interval of records as partitioned files plus a manifest.

Layout: `raw/<source>/dt=YYYY-MM-DD/part-<run>-NNNNN.jsonl.gz` and `_manifest.json`.
Parts carry a per-run id and the manifest, written last, lists exactly the parts
of the run that completed. Readers trust only the manifest, so a crashed or
concurrent extract can never mix runs, and a re-run replaces the partition.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from extract_load.bucket import Bucket
from extract_load.intervals import Interval

MANIFEST = "_manifest.json"


@dataclass
class Part:
    name: str
    rows: int
    bytes: int
    sha256: str


@dataclass
class Manifest:
    source: str
    interval_start: str
    interval_end: str
    run_id: str
    row_count: int = 0
    parts: list[Part] = field(default_factory=list)
    extracted_at: str = ""
    origin: str = ""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        raw = json.loads(data)
        raw["parts"] = [Part(**p) for p in raw["parts"]]
        return cls(**raw)


def partition_prefix(source: str, interval: Interval) -> str:
    return f"raw/{source}/{interval.partition}"


class PartitionWriter:
    """Streams records into gzip JSON-lines parts of at most `part_rows` rows."""

    def __init__(
        self, bucket: Bucket, source: str, interval: Interval, origin: str, part_rows: int = 250_000
    ) -> None:
        self.bucket = bucket
        self.prefix = partition_prefix(source, interval)
        self.part_rows = part_rows
        self.manifest = Manifest(
            source=source,
            interval_start=interval.start.isoformat(),
            interval_end=interval.end.isoformat(),
            run_id=uuid.uuid4().hex[:12],
            origin=origin,
        )
        self._buffer = io.BytesIO()
        self._gzip: gzip.GzipFile | None = None
        self._rows_in_part = 0

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            if self._gzip is None:
                self._buffer = io.BytesIO()
                # mtime=0 keeps parts byte-identical for identical data.
                self._gzip = gzip.GzipFile(fileobj=self._buffer, mode="wb", mtime=0)
            line = json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
            self._gzip.write(line.encode())
            self._rows_in_part += 1
            if self._rows_in_part >= self.part_rows:
                self._flush_part()

    def _flush_part(self) -> None:
        if self._gzip is None:
            return
        self._gzip.close()
        data = self._buffer.getvalue()
        name = f"part-{self.manifest.run_id}-{len(self.manifest.parts):05d}.jsonl.gz"
        self.bucket.write_bytes(f"{self.prefix}/{name}", data)
        self.manifest.parts.append(
            Part(name=name, rows=self._rows_in_part, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
        )
        self.manifest.row_count += self._rows_in_part
        self._gzip = None
        self._rows_in_part = 0

    def commit(self) -> Manifest:
        """Flush, write the manifest last, then drop parts of earlier runs."""
        self._flush_part()
        self.manifest.extracted_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.bucket.write_bytes(f"{self.prefix}/{MANIFEST}", self.manifest.to_json())
        keep = {f"{self.prefix}/{p.name}" for p in self.manifest.parts} | {f"{self.prefix}/{MANIFEST}"}
        for key in self.bucket.list(self.prefix):
            if key not in keep:
                self.bucket.delete(key)
        return self.manifest


class ManifestError(RuntimeError):
    """The landed partition is missing, incomplete or corrupted."""


def read_manifest(bucket: Bucket, source: str, interval: Interval) -> Manifest:
    prefix = partition_prefix(source, interval)
    key = f"{prefix}/{MANIFEST}"
    if not bucket.exists(key):
        raise ManifestError(
            f"no manifest at {bucket.url}/{key}: the interval {interval} was never "
            "extracted, or its extract did not finish"
        )
    manifest = Manifest.from_json(bucket.read_bytes(key))
    for part in manifest.parts:
        data = bucket.read_bytes(f"{prefix}/{part.name}")
        digest = hashlib.sha256(data).hexdigest()
        if digest != part.sha256:
            raise ManifestError(f"{prefix}/{part.name}: checksum {digest} != manifest {part.sha256}")
    return manifest
