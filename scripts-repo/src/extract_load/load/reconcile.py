"""The checks a load passes before it commits, and what it reports.

in = loaded + quarantined, against the manifest's own count; and no more than
the allowed share quarantined. Either failure commits nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from extract_load.intervals import Interval
from extract_load.landing.bucket import Bucket
from extract_load.landing.quarantine import QUARANTINE_FILE, quarantine_prefix


class ReconciliationError(RuntimeError):
    """Counts do not add up; nothing was committed."""


class QuarantineThresholdError(RuntimeError):
    """Too large a share of the interval was quarantined; nothing was committed."""


@dataclass(frozen=True)
class LoadResult:
    source: str
    interval: Interval
    rows_in: int
    loaded: int
    quarantined: int
    load_id: str
    bytes: int = 0
    seconds: float = 0.0
    reasons: dict[str, int] | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "interval_start": self.interval.start.isoformat(),
            "interval_end": self.interval.end.isoformat(),
            "rows_in": self.rows_in,
            "loaded": self.loaded,
            "quarantined": self.quarantined,
            "load_id": self.load_id,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "reasons": self.reasons or {},
        }


def check_counts(
    source: str,
    interval: Interval,
    manifest_rows: int,
    rows_in: int,
    reasons: dict[str, int],
    max_quarantine_ratio: float,
    bucket: Bucket,
) -> None:
    """Refuse to commit when rows went missing or too many were quarantined."""
    quarantined = sum(reasons.values())
    if rows_in != manifest_rows:
        raise ReconciliationError(
            f"{source} {interval}: manifest says {manifest_rows} rows, read {rows_in}, "
            f"loaded {rows_in - quarantined} + quarantined {quarantined}"
        )
    if rows_in and quarantined / rows_in > max_quarantine_ratio:
        raise QuarantineThresholdError(
            f"{source} {interval}: {quarantined} of {rows_in} records ({quarantined / rows_in:.1%}) "
            f"would be quarantined, over the {max_quarantine_ratio:.1%} threshold; reasons {reasons}. "
            f"Nothing was loaded; the records are in "
            f"{bucket.url}/{quarantine_prefix(source, interval)}/{QUARANTINE_FILE}"
        )
