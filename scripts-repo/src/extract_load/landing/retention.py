"""Removing landed days older than the retention period, a whole day at a time.

The bucket is what every reload replays, so retention is deliberate: a day is
removed only when it is older than the cutoff, and all of it (parts, manifest,
checkpoint) so no half-day can be reloaded later. The manifest goes last: a
crash midway leaves a day whose manifest still lists parts that are gone,
which a load refuses loudly, and the next prune finishes it. On GCS a bucket
lifecycle rule can do the same; this works on every bucket and says what it
removed.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from extract_load.landing.bucket import Bucket
from extract_load.landing.manifest import MANIFEST

DAY_PREFIX = re.compile(r"^raw/(?P<source>[^/]+)/dt=(?P<day>\d{4}-\d{2}-\d{2})/")


@dataclass
class PruneResult:
    source: str
    cutoff: str
    days: list[str] = field(default_factory=list)
    objects: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "cutoff": self.cutoff,
            "days_pruned": self.days,
            "objects": self.objects,
        }


def prune(bucket: Bucket, source: str, keep_days: int, today: dt.date, dry_run: bool = False) -> PruneResult:
    """Delete `raw/<source>/dt=D/` for every D before `today - keep_days`."""
    if keep_days < 1:
        raise ValueError("keep_days must be at least 1")
    cutoff = today - dt.timedelta(days=keep_days)
    result = PruneResult(source, cutoff.isoformat())
    by_day: dict[str, list[str]] = {}
    for key in bucket.list(f"raw/{source}"):
        match = DAY_PREFIX.match(key)
        if match and match["source"] == source and dt.date.fromisoformat(match["day"]) < cutoff:
            by_day.setdefault(match["day"], []).append(key)
    for day in sorted(by_day):
        keys = sorted(by_day[day], key=lambda k: k.endswith(MANIFEST))  # the manifest last
        if not dry_run:
            for key in keys:
                bucket.delete(key)
        result.days.append(day)
        result.objects += len(keys)
    return result
