"""Data intervals: the unit of idempotency for every extract and load."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    """A half-open local-time interval [start, end) of whole days."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"interval end {self.end} must be after start {self.start}")

    @classmethod
    def parse(cls, start: str, end: str | None = None) -> Interval:
        begin = dt.date.fromisoformat(start[:10])
        finish = dt.date.fromisoformat(end[:10]) if end else begin + dt.timedelta(days=1)
        return cls(begin, finish)

    @property
    def is_daily(self) -> bool:
        return self.end - self.start == dt.timedelta(days=1)

    def days(self) -> list[Interval]:
        count = (self.end - self.start).days
        return [
            Interval(self.start + dt.timedelta(days=i), self.start + dt.timedelta(days=i + 1))
            for i in range(count)
        ]

    @property
    def partition(self) -> str:
        """Bucket partition name; daily intervals map to the Hive-style `dt=` layout."""
        if not self.is_daily:
            raise ValueError(f"bucket partitions are daily; split {self.start}..{self.end} with days()")
        return f"dt={self.start.isoformat()}"

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"
