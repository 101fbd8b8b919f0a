"""`extract-load`: the one command line every environment runs.

Airflow calls the same command locally (a subprocess in this package's venv)
and on Kubernetes (this package's image), so every option can also come from an
environment variable and secrets only ever come from the environment.

Each module here is one group of commands, kept thin: it parses options,
calls a stage package (`sources`, `landing`, `load`, `demo`) and prints what
happened (`output`); errors become exit codes in `errors` only.
"""

from __future__ import annotations

from pathlib import Path

import click

from extract_load import __version__
from extract_load.cli.demo import generate, serve_api, serve_sheet
from extract_load.cli.extract import (
    describe_file_command,
    extract,
    extract_drive_command,
    extract_file_command,
    extract_sheet_command,
)
from extract_load.cli.load import load
from extract_load.cli.maintenance import prune
from extract_load.cli.sources import sources
from extract_load.cli.stream import stream


@click.group()
@click.version_option(__version__)
@click.option("--log-level", envvar="LOG_LEVEL", default="INFO", show_default=True)
@click.option(
    "--log-format",
    envvar="LOG_FORMAT",
    type=click.Choice(["auto", "json", "text"]),
    default="auto",
    show_default=True,
    help="auto: text on a terminal, JSON lines otherwise.",
)
@click.option(
    "--metrics-file",
    envvar="METRICS_FILE",
    type=click.Path(path_type=Path),
    default=None,
    help="Write this run's metrics here in Prometheus text format.",
)
@click.pass_context
def main(ctx: click.Context, log_level: str, log_format: str, metrics_file: Path | None) -> None:
    """Extract sources into the bucket and load the bucket into the warehouse."""
    from extract_load import redaction
    from extract_load.observability import RunMetrics, configure_logging

    redaction.install()  # before logging, whose handler writes to the redacted stderr
    configure_logging(log_level, log_format)
    metrics = RunMetrics()
    ctx.obj = metrics
    ctx.call_on_close(lambda: metrics.publish(metrics_file))


for command in (
    generate,
    serve_api,
    serve_sheet,
    extract,
    extract_file_command,
    describe_file_command,
    extract_sheet_command,
    extract_drive_command,
    sources,
    stream,
    load,
    prune,
):
    main.add_command(command)

__all__ = ["main"]
