"""What the data-health exporter measures, computed when Prometheus scrapes it.

Freshness is a lag against a clock, so it has to be computed at scrape time: a
gauge written after the last dbt run would stay small for ever once the
pipeline stops, which is exactly when the alert must fire. The clock is the
real one unless DATA_HEALTH_NOW names another instant (replays of old data,
and the tests that move time forward).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily, Metric

from data_health.artifacts import ArtifactStore
from warehouses import FRESHNESS_TABLE, Warehouse, WarehouseReading

log = logging.getLogger(__name__)


def clock() -> dt.datetime:
    if value := os.environ.get("DATA_HEALTH_NOW"):
        moment = dt.datetime.fromisoformat(value)
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return dt.datetime.now(dt.UTC)


@dataclass(eq=False)
class DataHealthCollector:
    """A prometheus_client collector over the warehouse and dbt's run results.

    `refresh` bounds how often the warehouse is read (BigQuery bills queries);
    the freshness lag is still computed against the clock at every scrape.
    """

    warehouse: Warehouse
    artifacts: ArtifactStore | None = None
    target: str = "duckdb"
    refresh: dt.timedelta = dt.timedelta(0)
    last: WarehouseReading | None = field(default=None, init=False)
    # One read at a time: concurrent scrapes share the last reading rather than each
    # opening the warehouse, and close() can wait out the read in flight.
    reading: threading.Lock = field(default_factory=threading.Lock, init=False)
    closed: bool = field(default=False, init=False)
    last_read: float = field(default=float("-inf"), init=False)
    up: int = field(default=0, init=False)

    def describe(self) -> list[Metric]:
        """Nothing up front: registering must not read anything (it happens before the server starts)."""
        return []

    def dbt_results(self) -> tuple[Counter[tuple[str, str]], float | None]:
        """Each node's latest status across the run_results.json files (one per dbt task)."""
        latest: dict[str, tuple[str, str]] = {}
        newest_run: str | None = None
        if self.artifacts is None:
            return Counter(), None
        for document in self.artifacts.documents():
            try:
                generated, results = document["metadata"]["generated_at"], list(document["results"])
            except (KeyError, TypeError):
                log.warning("skipping a run_results.json without metadata.generated_at or results")
                continue
            newest_run = max(newest_run or generated, generated)
            for result in results:
                seen = latest.get(result["unique_id"])
                if seen is None or seen[0] <= generated:
                    latest[result["unique_id"]] = (generated, result["status"])
        counts = Counter((unique_id.split(".")[0], status) for unique_id, (_, status) in latest.items())
        when = (
            dt.datetime.fromisoformat(newest_run.replace("Z", "+00:00")).timestamp() if newest_run else None
        )
        return counts, when

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "platform_data_health_warehouse_up",
            "1 when the latest read of the warehouse succeeded; 0 while it is locked, missing"
            " or unreachable (the values are then the last good reading)",
        )
        with self.reading:
            if not self.closed and (
                self.last is None or time.monotonic() - self.last_read >= self.refresh.total_seconds()
            ):
                try:
                    self.last = self.warehouse.read(clock())
                    self.last_read = time.monotonic()
                    self.up = 1
                except Exception as error:  # noqa: BLE001 - a locked file, a network or quota error: report, go on
                    log.warning("warehouse not readable this scrape: %s", error)
                    self.up = 0
            last, current = self.last, self.up
        up.add_metric([], current)
        yield up
        if last is not None:
            yield from self._warehouse_metrics(last)
        yield from self._dbt_metrics()

    def close(self) -> None:
        """Wait for the read in flight, then read no more.

        Scrapes run on the HTTP server's daemon threads. Exiting the interpreter
        while one of them is inside DuckDB crashed the process (DuckDB's native
        destructors ran under the query) or hung it, so a SIGTERM from
        Kubernetes or a test must first let that read finish.
        """
        with self.reading:
            self.closed = True

    def _warehouse_metrics(self, reading: WarehouseReading) -> Iterator[Metric]:
        rows = GaugeMetricFamily("platform_warehouse_rows", "Rows per modelled table", labels=["table"])
        for table, count in sorted(reading.rows.items()):
            rows.add_metric([table], count)
        yield rows
        size = GaugeMetricFamily("platform_warehouse_bytes", "Size of the warehouse on disk")
        size.add_metric([], reading.size_bytes)
        yield size
        if reading.newest_event is not None:
            newest = GaugeMetricFamily(
                "platform_data_newest_event_timestamp_seconds",
                "Event time (UTC) of the newest event the warehouse holds",
                labels=["table"],
            )
            newest.add_metric([FRESHNESS_TABLE], reading.newest_event.timestamp())
            yield newest
            lag = GaugeMetricFamily(
                "platform_data_freshness_lag_seconds",
                "Age of the newest event at scrape time (DATA_HEALTH_NOW moves the clock)",
                labels=["table"],
            )
            lag.add_metric([FRESHNESS_TABLE], (clock() - reading.newest_event).total_seconds())
            yield lag

    def _dbt_metrics(self) -> Iterator[Metric]:
        counts, last_run = self.dbt_results()
        results = GaugeMetricFamily(
            "platform_dbt_results",
            "dbt nodes by resource type and latest status (pass, fail, error, success, skipped, warn)",
            labels=["resource_type", "status", "target"],
        )
        for (resource_type, status), count in sorted(counts.items()):
            results.add_metric([resource_type, status, self.target], count)
        # A failing test that then passes must bring the count back to 0, not vanish.
        for resource_type, status in (("test", "fail"), ("test", "error"), ("model", "error")):
            if (resource_type, status) not in counts:
                results.add_metric([resource_type, status, self.target], 0)
        yield results
        if last_run is not None:
            run = GaugeMetricFamily(
                "platform_dbt_last_run_timestamp_seconds", "When dbt last wrote results", labels=["target"]
            )
            run.add_metric([self.target], last_run)
            yield run
