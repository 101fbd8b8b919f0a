"""Extract one interval of the events API into the bucket."""

from __future__ import annotations

import datetime as dt
import logging

from extract_load.bucket import Bucket
from extract_load.http_source import RestClient
from extract_load.intervals import Interval
from extract_load.landing import Manifest, PartitionWriter

log = logging.getLogger(__name__)


def extract_events_api(
    client: RestClient,
    bucket: Bucket,
    interval: Interval,
    source: str = "events",
    page_size: int = 5000,
    part_rows: int = 250_000,
) -> Manifest:
    writer = PartitionWriter(bucket, source, interval, origin=client.base_url, part_rows=part_rows)
    params = {
        "start": dt.datetime.combine(interval.start, dt.time()).isoformat(),
        "end": dt.datetime.combine(interval.end, dt.time()).isoformat(),
    }
    pages = 0
    for page in client.paginate("/v1/events", params, page_size=page_size):
        writer.write(page)
        pages += 1
    manifest = writer.commit()
    log.info(
        "extracted %s %s: %d rows in %d pages -> %d parts",
        source,
        interval,
        manifest.row_count,
        pages,
        len(manifest.parts),
    )
    return manifest
