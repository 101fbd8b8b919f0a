"""Extract one interval of a REST source into the bucket, resumably."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import asdict
from typing import Any

from extract_load.intervals import Interval
from extract_load.landing.bucket import Bucket
from extract_load.landing.leases import Lease
from extract_load.landing.manifest import Manifest, PartitionWriter, partition_prefix
from extract_load.redaction import public_location
from extract_load.sources.http import Pagination, RestClient
from extract_load.sources.prefetch import ahead

log = logging.getLogger(__name__)

EVENTS_API_PAGINATION = Pagination(style="cursor", cursor_path="next_cursor", cursor_param="cursor")


def interval_params(interval: Interval) -> dict[str, str]:
    """The events API filters on local time: [start, end) as ISO datetimes."""
    return {
        "start": dt.datetime.combine(interval.start, dt.time()).isoformat(),
        "end": dt.datetime.combine(interval.end, dt.time()).isoformat(),
    }


def extract_rest(
    client: RestClient,
    bucket: Bucket,
    interval: Interval,
    source: str = "events",
    path: str = "/v1/events",
    params: dict[str, Any] | None = None,
    pagination: Pagination = EVENTS_API_PAGINATION,
    data_selector: str | None = "data",
    part_rows: int = 250_000,
) -> Manifest:
    """One interval from a REST API into the bucket, under the interval's lease."""
    params = interval_params(interval) if params is None else params
    # The host may differ between attempts (another pod, another port); the request may not.
    request = {"path": path, "params": params, "pagination": asdict(pagination)}
    fingerprint = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:16]
    with Lease(bucket, partition_prefix(source, interval)) as lease:
        # The origin is kept 400 days in every manifest: no credentials or query string in it.
        writer = PartitionWriter.resume_or_start(
            bucket, source, interval, public_location(client.base_url), part_rows, fingerprint, lease
        )
        if writer.resumed:
            log.info(
                "resuming %s %s from checkpoint: %d rows in %d parts already landed",
                source,
                interval,
                writer.manifest.row_count,
                len(writer.manifest.parts),
            )
        pages = 0
        if not writer.complete:
            # The next page is requested while this one lands (sources/prefetch.py).
            for records, next_state in ahead(
                client.pages(path, params, pagination, data_selector, writer.resume_state)
            ):
                writer.write(records)
                writer.end_page(next_state)
                pages += 1
        manifest = writer.commit()
    log.info(
        "extracted %s %s: %d rows, %d pages this run -> %d parts",
        source,
        interval,
        manifest.row_count,
        pages,
        len(manifest.parts),
    )
    return manifest
