"""P4: how fast events get from a source into the bucket, against the source's own pace.

Runs in the scripts-repo environment. Each case prints one JSON line per
repetition; `bench/run.py` turns them into medians and ratios.

- events API: the `extract-load extract` command over HTTP into a local bucket,
  against a plain client that pages through the same API and only decodes
  the JSON (what the API can give at all).
  Every case, baselines included (bare_clients.py), is a process of its own
  timed from outside, start-up included.
- Kafka: `extract-load stream` against librdkafka's mock cluster, against a
  plain consumer that only drains the topic. The cluster runs in its own
  process, as in the tests.
- landed bytes per event: gzipped JSON lines (what the bucket holds) and the
  same records as Parquet, to choose the landing format with numbers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from _common import emit, emit_rate

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE.parents[1] / "scripts-repo"
DAY = "2025-03-05"


def emit_throughput(
    case: str, group: str, events: int, seconds: float, baseline: bool = False, **extra: object
) -> None:
    emit_rate("P4", group, case, events, seconds, baseline=baseline, **extra)


def emit_bytes(case: str, size: int, events: int, baseline: bool) -> None:
    emit("P4", "landed bytes per event", case, size / events, "bytes/event", baseline=baseline, events=events,
         lower_is_better=True)  # fmt: skip


def one_day_of_events(events: int, out: Path) -> Path:
    """`events` generated events, all on one local day: one interval to extract."""
    from extract_load.demo.generator import GeneratorSpec, generate

    spec = GeneratorSpec.for_event_count(events, dt.date(2025, 1, 6), 90, seed=7)
    tables = []
    total = 0
    for table in generate(spec):
        tables.append(table)
        total += table.num_rows
        if total >= events:
            break
    table = pa.concat_tables(tables).slice(0, events)
    # Move every event onto one day, keeping its time of day.
    times = table.column("event_time").to_pylist()
    moved = [
        f"{DAY} {t.strftime('%H:%M:%S')}" if hasattr(t, "strftime") else f"{DAY} {str(t)[11:19]}"
        for t in times
    ]
    table = table.set_column(table.schema.get_field_index("event_time"), "event_time", pa.array(moved))
    pq.write_table(table, out)
    return out


def start_api(source: Path, workdir: Path) -> tuple[subprocess.Popen, str]:
    url_file = workdir / "api.url"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "extract_load.cli",
            "serve-api",
            "--source",
            str(source),
            "--url-file",
            str(url_file),
        ],
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not url_file.exists():
        if time.monotonic() > deadline or server.poll() is not None:
            raise RuntimeError("the events API did not start")
        time.sleep(0.1)
    return server, url_file.read_text().strip()


def bare(*args: str) -> tuple[int, float]:
    """Run one of bare_clients.py's clients in its own process: events it got, seconds from outside."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(HERE / "bare_clients.py"), *args], check=True, capture_output=True, text=True
    )
    return int(done.stdout.split()[-1]), time.monotonic() - started


def raw_pages(url: str, page_size: int) -> tuple[int, float]:
    return bare("api", url, str(page_size), f"{DAY}T00:00:00", "2025-03-06T00:00:00")


def cli(*args: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "extract_load.cli", "--log-format", "json", *args],
        check=True,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def bench_api(events: int, reps: int, workdir: Path) -> None:
    source = one_day_of_events(events, workdir / "events.parquet")
    server, url = start_api(source, workdir)
    page_size = 5000  # the events source's configured page size
    try:
        raw_pages(url, page_size)  # warm the server's store
        for rep in range(reps):
            rows, seconds = raw_pages(url, page_size)
            emit_throughput(
                "events API: bare client, decode only", "extract over HTTP", rows, seconds, baseline=True
            )
            bucket = workdir / f"bucket-{rep}"
            started = time.monotonic()
            cli("extract", "--start", DAY, "--api-url", url, "--bucket", str(bucket), env={})
            seconds = time.monotonic() - started
            manifest = json.loads((bucket / f"raw/events/dt={DAY}/_manifest.json").read_text())
            assert manifest["row_count"] == rows == events, (manifest["row_count"], rows, events)
            emit_throughput("events API: extract-load extract -> bucket", "extract over HTTP", rows, seconds)
        landed_bytes(bucket, events)
    finally:
        server.terminate()
        server.wait(30)


def landed_bytes(bucket: Path, events: int) -> None:
    """Bytes per event in the bucket as gzipped JSON lines, and as Parquet (zstd) for comparison."""
    parts = sorted((bucket / f"raw/events/dt={DAY}").glob("*.jsonl.gz"))
    jsonl = sum(p.stat().st_size for p in parts)
    records = [json.loads(line) for p in parts for line in gzip.decompress(p.read_bytes()).splitlines()]
    parquet = bucket / "compare.parquet"
    pq.write_table(pa.Table.from_pylist(records), parquet, compression="zstd")
    for case, size, baseline in (
        ("landed as gzipped JSON lines", jsonl, True),
        ("same records as Parquet (zstd)", parquet.stat().st_size, False),
    ):
        emit_bytes(case, size, events, baseline)


def start_cluster(events: int, workdir: Path) -> tuple[subprocess.Popen, str]:
    source = workdir / "kafka.jsonl"
    with source.open("w") as handle:
        for i in range(events):
            handle.write(
                json.dumps(
                    {
                        "event_time": f"{DAY} {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}",
                        "user_id": f"u_{i % 5000}",
                        "event_type": "miles_earned",
                        "transaction_category": "dining",
                        "miles_amount": "12.5",
                        "platform": "ios",
                        "utm_source": "organic",
                        "country": "SG",
                    }
                )
                + "\n"
            )
    cluster = subprocess.Popen(
        [sys.executable, str(SCRIPTS / "tests" / "kafka_mock_cluster.py"), "events", str(source), "3"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = cluster.stdout.readline().split()  # type: ignore[union-attr]
    if not line:
        raise RuntimeError("the mock Kafka cluster did not start")
    return cluster, line[0]


def drain(bootstrap: str, events: int) -> tuple[int, float]:
    seen, seconds = bare("kafka", bootstrap, "events", str(events))
    if seen != events:
        # librdkafka's mock broker keeps about 5 MB per partition and drops older messages.
        raise RuntimeError(f"drained {seen} of {events} messages: lower --kafka-events")
    return seen, seconds


def bench_kafka(events: int, reps: int, workdir: Path) -> None:
    cluster, bootstrap = start_cluster(events, workdir)
    try:
        drain(bootstrap, events)  # first fetch warms the broker
        for rep in range(reps):
            seen, seconds = drain(bootstrap, events)
            case = "Kafka: bare consumer, drain only"
            emit_throughput(case, "Kafka consumer", seen, seconds, baseline=True)
            bucket = workdir / f"stream-{rep}"
            started = time.monotonic()
            cli(
                "stream",
                "--topic",
                "events",
                "--bootstrap-servers",
                bootstrap,
                "--group",
                f"bench-{rep}",
                "--bucket",
                str(bucket),
                "--max-batch",
                "10000",
                "--max-wait",
                "1",
                "--max-messages",
                str(events),
                env={},
            )
            seconds = time.monotonic() - started
            # A stream feeds its own source (events_stream), never the one extracts feed.
            manifest = json.loads((bucket / f"raw/events_stream/dt={DAY}/_manifest.json").read_text())
            assert manifest["row_count"] == events, (manifest["row_count"], events)
            case = "Kafka: extract-load stream -> bucket, offsets committed"
            emit_throughput(case, "Kafka consumer", events, seconds)
    finally:
        cluster.stdin.close()  # type: ignore[union-attr]
        cluster.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    # The mock broker retains about 5 MB per partition (4 partitions): ~80k events of this size.
    parser.add_argument("--kafka-events", type=int, default=60_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-p4-") as tmp:
        bench_api(args.events, args.reps, Path(tmp))
        bench_kafka(args.kafka_events, args.reps, Path(tmp))


if __name__ == "__main__":
    main()
