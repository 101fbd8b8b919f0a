"""Logs, progress and metrics for people and for machines.

On a terminal a person gets readable logs and progress bars; anywhere else
(Airflow, Kubernetes) every log line is one JSON object on stderr, and stdout
stays reserved for the result lines. Per-run metrics are written in
Prometheus text format to a file (the data-health exporter serves the folder
locally) and, in Kubernetes, sent to the StatsD exporter as tagged gauges.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

T = TypeVar("T")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, fmt: str = "auto") -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    if use_json:
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "urllib3", "google", "dlt"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def progress(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """A progress bar on a terminal; the items unchanged anywhere else."""
    if not sys.stderr.isatty():
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, desc=description, total=total, unit="day", file=sys.stderr, leave=False)


class RunMetrics:
    """Gauges for one CLI run, labelled by source, stage and interval."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["source", "stage", "interval"]
        self.rows = Gauge(
            "extract_load_rows",
            "Rows of the interval in this run, by kind",
            [*labels, "kind"],
            registry=self.registry,
        )
        self.bytes = Gauge(
            "extract_load_bytes", "Compressed bytes landed for the interval", labels, registry=self.registry
        )
        self.seconds = Gauge(
            "extract_load_seconds", "Seconds the stage took for the interval", labels, registry=self.registry
        )
        self.quarantined = Gauge(
            "extract_load_quarantined_rows",
            "Quarantined rows by reason",
            ["source", "interval", "reason"],
            registry=self.registry,
        )
        self.finished = Gauge(
            "extract_load_last_success_timestamp_seconds",
            "When the stage last succeeded",
            ["source", "stage"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "extract_load_kafka_consumer_lag",
            "Messages behind the committed offset when the stream run ended",
            ["source", "topic", "partition"],
            registry=self.registry,
        )
        self.recorded: set[tuple[str, str, str]] = set()  # (source, stage, interval) this run measured

    def extracted(self, source: str, interval: str, rows: int, size: int, seconds: float) -> None:
        self.recorded.add((source, "extract", interval))
        self.rows.labels(source, "extract", interval, "landed").set(rows)
        self.bytes.labels(source, "extract", interval).set(size)
        self.seconds.labels(source, "extract", interval).set(seconds)
        self.finished.labels(source, "extract").set(time.time())

    def loaded(
        self,
        source: str,
        interval: str,
        rows_in: int,
        loaded: int,
        reasons: dict[str, int],
        size: int,
        seconds: float,
    ) -> None:
        self.recorded.add((source, "load", interval))
        self.rows.labels(source, "load", interval, "in").set(rows_in)
        self.rows.labels(source, "load", interval, "loaded").set(loaded)
        self.rows.labels(source, "load", interval, "quarantined").set(sum(reasons.values()))
        for reason, count in reasons.items():
            self.quarantined.labels(source, interval, reason).set(count)
        self.bytes.labels(source, "load", interval).set(size)
        self.seconds.labels(source, "load", interval).set(seconds)
        self.finished.labels(source, "load").set(time.time())

    def consumer_lag(self, source: str, topic: str, partition: int, lag: int) -> None:
        self.recorded.add((source, "stream", topic))
        self.lag.labels(source, topic, str(partition)).set(lag)
        self.finished.labels(source, "stream").set(time.time())

    def write(self, path: Path | None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_to_textfile(str(path), self.registry)  # writes a temp file and renames it

    def default_path(self, directory: Path) -> Path | None:
        """One file per (sources, stage, intervals): a re-run of the same work replaces its file."""
        if not self.recorded:
            return None
        sources = "+".join(sorted({source for source, _, _ in self.recorded}))
        stages = "+".join(sorted({stage for _, stage, _ in self.recorded}))
        intervals = sorted({interval for _, _, interval in self.recorded})
        span = intervals[0] if len(intervals) == 1 else f"{intervals[0]}_{intervals[-1]}"
        return directory / f"extract_load-{sources}-{stages}-{span}.prom".replace("/", "_")

    def publish(self, path: Path | None) -> None:
        """Where the run's metrics go: a file named on the command line, else a file in
        EXTRACT_LOAD_METRICS_DIR (the exporter serves that folder locally), and the
        StatsD exporter when STATSD_HOST is set (Kubernetes)."""
        from extract_load.settings import settings

        config = settings()
        if path is None and config.metrics_dir is not None:
            path = self.default_path(config.metrics_dir)
        self.write(path)
        if config.statsd_host:
            send_statsd(self.registry, config.statsd_host, config.statsd_port)


def statsd_lines(registry: CollectorRegistry) -> list[str]:
    """Gauges as DogStatsD lines; the statsd exporter turns the tags into labels."""
    lines = []
    for family in registry.collect():
        for sample in family.samples:
            tags = ",".join(f"{key}:{value}" for key, value in sorted(sample.labels.items()))
            lines.append(f"{sample.name}:{sample.value:g}|g" + (f"|#{tags}" if tags else ""))
    return lines


def send_statsd(registry: CollectorRegistry, host: str, port: int) -> None:
    """Best effort over UDP, like StatsD itself: metrics never fail a load that succeeded."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for line in statsd_lines(registry):
                sock.sendto(line.encode(), (host, port))
    except OSError as error:
        logging.getLogger(__name__).warning("could not send metrics to StatsD %s:%s: %s", host, port, error)
