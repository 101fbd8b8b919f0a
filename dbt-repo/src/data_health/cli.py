"""`data-health`: serve the data's health to Prometheus, or write it once as a text file.

`serve` is the exporter Prometheus scrapes (locally from `make up` and the
tests; in Kubernetes a Deployment of the dbt image, reading BigQuery and the
artifacts bucket): the warehouse and dbt metrics are computed per scrape, and
the extract & load runs' text files in --textfile-dir are served beside them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import signal
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server, write_to_textfile

from data_health.artifacts import ArtifactStore
from data_health.collect import DataHealthCollector
from data_health.textfiles import TextfileCollector
from warehouses import from_environment


def registry(args: argparse.Namespace) -> tuple[CollectorRegistry, DataHealthCollector]:
    """The registry to serve, and its warehouse collector (to close before exiting)."""
    registry = CollectorRegistry()
    artifacts = ArtifactStore(args.artifacts_url) if args.artifacts_url else None
    refresh = dt.timedelta(seconds=args.refresh_seconds)
    health = DataHealthCollector(from_environment(args.target), artifacts, args.target, refresh)
    registry.register(health)
    if args.textfile_dir is not None:
        registry.register(TextfileCollector(args.textfile_dir))
    return registry, health


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("serve", "write"):
        command = sub.add_parser(name)
        command.add_argument(
            "--artifacts-url",
            default=os.environ.get("DBT_ARTIFACTS_URL"),
            help="where dbt's run_results.json files are: a folder, file://... or gs://bucket/prefix",
        )
        command.add_argument("--textfile-dir", type=Path, default=None)
        command.add_argument("--target", default=os.environ.get("DBT_TARGET", "duckdb"))
        command.add_argument(
            "--refresh-seconds",
            type=float,
            default=float(os.environ.get("DATA_HEALTH_REFRESH_SECONDS", "0")),
            help="read the warehouse at most this often (0: every scrape); BigQuery bills each read",
        )
    serve = sub.choices["serve"]
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=9464)
    serve.add_argument("--url-file", type=Path, help="write the /metrics URL here once listening")
    sub.choices["write"].add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    if args.command == "write":
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(args.out), registry(args)[0])
        return
    served, health = registry(args)
    # The kernel hands a process signal to any thread that does not block it: to a
    # scrape's or DuckDB's thread, a Python handler would wait, unrun, for the main
    # thread to wake. Blocked here, before any thread starts (threads inherit the
    # mask), SIGTERM and SIGINT can reach only the main thread's sigwait.
    stopping = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stopping)
    server, thread = start_http_server(args.port, addr=args.host, registry=served)
    url = f"http://{args.host}:{server.server_port}/metrics"
    logging.getLogger("data_health").info("serving %s", url)
    if args.url_file:
        args.url_file.write_text(url)
    received = signal.sigwait(stopping)
    logging.getLogger("data_health").info("stopping on %s", signal.Signals(received).name)
    server.shutdown()
    thread.join()
    server.server_close()
    health.close()


if __name__ == "__main__":
    main()
