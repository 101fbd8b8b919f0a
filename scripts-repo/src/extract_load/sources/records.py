"""Physical records of a CSV or JSON-lines file, counted apart from the reader that parses them.

DuckDB parses a file drop; its count of what it read cannot also be the check
that nothing was lost, because a record its reader drops (a line over its
size limit) is missing from both sides. This module is the independent side:
Python's own CSV reader (same RFC 4180 dialect) or a byte scan of the lines
counts the file's data records, and a record over `MAX_RECORD_BYTES` is set
aside whole (its own bytes, with its line number and byte offset) before
DuckDB sees the file, instead of being cut to 10,000 characters, dropped, or
failing the file. The parser then reads a copy in which each such record is
a blank line (CSV) or a small stub object (JSON lines), so its line numbers
stay the file's.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from extract_load.contract import OVERSIZED_KEY

# A record longer than this (in bytes; in characters for CSV) is quarantined whole.
# The parser is told `parser_limit()`, above it, so nothing under it is ever cut.
MAX_RECORD_BYTES = 1 << 20


def parser_limit(limit: int = MAX_RECORD_BYTES) -> int:
    """DuckDB's max_line_size for a scan with `limit`: a character is at most four bytes."""
    return 4 * limit + 1024


HEAD_CHARS = 200


@dataclass(frozen=True)
class Oversized:
    """A record set aside whole: where it was in the file and what it was."""

    line: int  # the record's number as the parser counts lines (CSV: the header is 1)
    first_physical_line: int
    byte_offset: int  # of its first byte, in the (decompressed) file
    size: int
    sha256: str
    head: str  # its first characters, to recognise it
    path: Path  # its bytes, whole

    def stub(self, kept_at: str | None) -> dict[str, object]:
        return {
            OVERSIZED_KEY: {
                "line": self.line,
                "physical_line": self.first_physical_line,
                "byte_offset": self.byte_offset,
                "bytes": self.size,
                "sha256": self.sha256,
                "head": self.head,
                "kept_at": kept_at,
            }
        }


@dataclass
class Scan:
    """The file for the parser to read, how many data records the file holds, and those set aside."""

    path: Path
    records: int
    limit: int
    oversized: list[Oversized] = field(default_factory=list)


@contextmanager
def _open(path: Path) -> Iterator[IO[bytes]]:
    if path.name.lower().endswith(".gz"):
        with gzip.open(path, "rb") as handle:
            yield handle  # type: ignore[misc]
    else:
        with path.open("rb") as handle:
            yield handle


def scan_jsonl(
    path: Path,
    workdir: Path,
    limit: int = MAX_RECORD_BYTES,
    kept_at: Callable[[int], str | None] = lambda n: None,
) -> Scan:
    """Count non-blank lines; lines over `limit` bytes are set aside and replaced by a stub line."""
    records, oversized = 0, []
    offset = 0
    cleaned: IO[bytes] | None = None
    with _open(path) as handle:
        for number, line in enumerate(_lines(handle), start=1):
            if line.strip(b" \r\n"):
                records += 1
            if len(line) > limit:
                big = _keep(workdir, number, number, offset, [line])
                oversized.append(big)
                if cleaned is None:
                    cleaned = _start_copy(path, workdir, offset)
                cleaned.write(json.dumps(big.stub(kept_at(number))).encode() + b"\n")
            elif cleaned is not None:
                cleaned.write(line)
            offset += len(line)
    if cleaned is not None:
        cleaned.close()
        return Scan(workdir / "cleaned.jsonl", records, limit, oversized)
    return Scan(path, records, limit)


def scan_csv(path: Path, workdir: Path, limit: int = MAX_RECORD_BYTES) -> Scan:
    """Count data records by Python's CSV reader; records over `limit` become blank lines in a copy."""
    csv.field_size_limit(sys.maxsize)
    ends: list[int] = []  # the physical line each record ends on
    big: list[int] = []  # record numbers (the header is 1) over the limit
    records = 0
    with _open(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        reader = csv.reader(text, delimiter=",", quotechar='"', doublequote=True, strict=False)
        for number, row in enumerate(reader, start=1):
            ends.append(reader.line_num)
            if number == 1:
                continue
            if row:
                records += 1
            if sum(len(value) for value in row) + len(row) > limit:
                big.append(number)
    if not big:
        return Scan(path, records, limit)
    # Second pass, on bytes: each oversized record's physical lines go whole to its own file.
    spans = {(ends[n - 2] + 1 if n > 1 else 1): (n, ends[n - 1]) for n in big}
    oversized = []
    cleaned = workdir / "cleaned.csv"
    with _open(path) as handle, cleaned.open("wb") as out:
        offset, physical = 0, 0
        lines = _lines(handle)
        for line in lines:
            physical += 1
            if physical in spans:
                number, last = spans[physical]
                start, chunks = offset, [line]
                while physical < last:
                    line = next(lines)
                    physical += 1
                    chunks.append(line)
                oversized.append(_keep(workdir, number, physical - len(chunks) + 1, start, chunks))
                offset += sum(len(c) for c in chunks)
                out.write(b"\n")  # the parser skips it but counts it: later line numbers stay
                continue
            out.write(line)
            offset += len(line)
    return Scan(cleaned, records, limit, oversized)


def _lines(handle: IO[bytes]) -> Iterator[bytes]:
    """The file's lines (split on \\n, kept), each whole however long."""
    while True:
        line = handle.readline()
        if not line:
            return
        yield line


def _start_copy(path: Path, workdir: Path, upto: int) -> IO[bytes]:
    """A copy of the file's first `upto` bytes, to be continued by the caller."""
    out = (workdir / "cleaned.jsonl").open("wb")
    with _open(path) as handle:
        remaining = upto
        while remaining:
            chunk = handle.read(min(remaining, 1 << 20))
            if not chunk:
                break
            out.write(chunk)
            remaining -= len(chunk)
    return out


def _keep(workdir: Path, number: int, physical: int, offset: int, chunks: list[bytes]) -> Oversized:
    target = workdir / f"oversized-{number}.bin"
    digest = hashlib.sha256()
    size = 0
    with target.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
    head = chunks[0][: HEAD_CHARS * 4].decode("utf-8", errors="replace")[:HEAD_CHARS]
    return Oversized(number, physical, offset, size, digest.hexdigest(), head, target)
