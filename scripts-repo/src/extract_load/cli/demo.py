"""The demo's own sources: `generate` events, `serve-api` them over HTTP, `serve-sheet` a CSV as a sheet."""

from __future__ import annotations

import datetime as dt
from http.server import ThreadingHTTPServer
from pathlib import Path

import click

from extract_load.cli.output import emit


@click.command()
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Parquet file to write.")
@click.option("--start", default="2025-01-06", show_default=True, help="First local date.")
@click.option("--days", type=int, default=90, show_default=True)
@click.option("--users", type=int, default=None, help="Users signing up over the period.")
@click.option("--events", type=int, default=None, help="Approximate event count (sets --users).")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--with-gender/--without-gender", default=False, show_default=True)
def generate(
    out: Path, start: str, days: int, users: int | None, events: int | None, seed: int, with_gender: bool
) -> None:
    """Generate a deterministic synthetic loyalty-app event stream."""
    from extract_load.demo.generator import GeneratorSpec, write_parquet

    first = dt.date.fromisoformat(start)
    if users is None:
        spec = GeneratorSpec.for_event_count(events or 50_000, first, days, seed, with_gender)
    else:
        spec = GeneratorSpec(first, days, users, seed, with_gender)
    count = write_parquet(spec, out)
    emit({"events": count, "users": spec.users, "days": days, "seed": seed, "path": str(out)})


@click.command("serve-api")
@click.option(
    "--source",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="Generated Parquet stream or a CSV export.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, show_default=True, help="0 picks a free port.")
@click.option(
    "--url-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the served base URL here once listening.",
)
@click.option("--time-column", default="event_time", show_default=True, help="The column the API filters on.")
@click.option("--resource", default="events", show_default=True, help="Served at /v1/<resource>.")
def serve_api(
    source: Path, host: str, port: int, url_file: Path | None, time_column: str, resource: str
) -> None:
    """Serve an event stream (or any table with a time column) as a paginated, interval-filtered API."""
    from extract_load.demo.events_api import SourceError, serve
    from extract_load.settings import settings

    try:
        server = serve(source, host, port, settings().events_api_token, time_column, resource)
    except (SourceError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    _serve_until_stopped(server, f"http://{host}:{server.server_port}", url_file, "events API")


@click.command("serve-sheet")
@click.option(
    "--csv", "sheet", type=click.Path(exists=True, path_type=Path), required=True, help="The sheet, as CSV."
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, show_default=True, help="0 picks a free port.")
@click.option("--url-file", type=click.Path(path_type=Path), default=None, help="Write the endpoint here.")
def serve_sheet(sheet: Path, host: str, port: int, url_file: Path | None) -> None:
    """Serve a CSV file as a Google Sheet's values (point GOOGLE_SHEETS_API_ENDPOINT at it)."""
    from extract_load.demo.sheets_api import serve

    try:
        server = serve(sheet, host, port)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    _serve_until_stopped(server, f"http://{host}:{server.server_port}/", url_file, "sheets stand-in")


def _serve_until_stopped(server: ThreadingHTTPServer, url: str, url_file: Path | None, what: str) -> None:
    """Say where it listens (atomically in `url_file`, for a script to wait on), then serve until stopped."""
    if url_file is not None:
        tmp = url_file.with_suffix(".tmp")
        tmp.write_text(url + "\n")
        tmp.replace(url_file)
    click.echo(f"{what} on {url}", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
