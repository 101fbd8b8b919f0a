"""The extract commands: one source's data intervals into the bucket.

`extract` runs any source the sources file declares (a REST API resumably, a
file or a sheet whole); `extract-file`, `extract-sheet` and `extract-drive`
land a file, range or Drive file named on the command line; `describe-file`
says what a file holds without landing anything.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from extract_load.cli import options
from extract_load.cli.errors import EXIT_SOURCE_UNAVAILABLE, Failure, exit_codes
from extract_load.cli.output import emit, emit_file_extract, emit_landed, manifest_result, metrics
from extract_load.landing.bucket import Bucket, open_bucket
from extract_load.observability import progress

if TYPE_CHECKING:  # the registry imports dlt: keep it off the start-up path
    from extract_load.contract import QuarantinePolicy
    from extract_load.intervals import Interval
    from extract_load.sources.registry import Source

# Sources whose extract reads a whole file or sheet and lands the days asked for.
BATCH_FILE_KINDS = frozenset({"file", "sheets"})


@click.command()
@click.option(
    "--source",
    default="events",
    show_default=True,
    help="A REST source from the sources file.",
    callback=options.name,
)
@click.option(
    "--start",
    default=None,
    help="Interval start, local date YYYY-MM-DD (a postgres source: default from its watermark).",
)
@click.option("--end", default=None, help="Interval end (exclusive); default start + 1 day.")
@click.option("--api-url", default=None, help="Override the source's base URL.")
@options.bucket_option
@click.option("--page-size", type=click.IntRange(1), default=None, help="Override the source's page size.")
@click.option(
    "--part-rows", type=int, default=250_000, show_default=True, help="Rows per landed part (about)."
)
@click.option(
    "--max-rps", type=float, envvar="EXTRACT_MAX_RPS", default=None, help="Client-side request rate limit."
)
@click.option(
    "--max-attempts",
    type=click.IntRange(1),
    envvar="EXTRACT_MAX_ATTEMPTS",
    default=6,
    show_default=True,
    help="Attempts per request before the source counts as down.",
)
@options.quarantine_policy_options
def extract(
    source: str,
    start: str | None,
    end: str | None,
    api_url: str | None,
    bucket_url: str,
    page_size: int | None,
    part_rows: int,
    max_rps: float | None,
    max_attempts: int,
    max_quarantine_ratio: float,
    event_types: str | None,
) -> None:
    """Extract one data interval per day of a source into the bucket (a REST API resumably)."""
    from dataclasses import replace

    import requests

    from extract_load.sources.http import RestClient
    from extract_load.sources.registry import SourceConfigError, load_sources
    from extract_load.sources.rest import extract_rest

    config = load_sources().get(source)
    if config is None:
        raise click.BadParameter(f"{source!r} is not in the sources file", param_hint="--source")
    if config.kind == "postgres":
        _extract_table(config, options.optional_interval(start, end), open_bucket(bucket_url), part_rows)
        return
    if start is None:
        raise click.BadParameter("required for a source without a watermark", param_hint="--start")
    if config.kind in BATCH_FILE_KINDS:
        policy = options.policy(max_quarantine_ratio, event_types, source)
        _extract_declared_file(
            config, options.interval(start, end), open_bucket(bucket_url), part_rows, policy
        )
        return
    if config.kind != "rest":
        raise click.BadParameter(
            f"{source!r} is a {config.kind} source: consume it with `extract-load stream`",
            param_hint="--source",
        )
    try:
        base_url = api_url or config.env("base_url") or ""
    except SourceConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    pagination = config.pagination()
    if page_size:
        pagination = replace(pagination, page_size=page_size)
    bucket = open_bucket(bucket_url)
    run_metrics = metrics()
    days = options.interval(start, end).days()
    with (
        exit_codes(),
        RestClient(
            base_url, auth=config.auth(), requests_per_second=max_rps, max_attempts=max_attempts
        ) as client,
    ):
        for day in progress(days, f"extract {source}", len(days)):
            started = time.monotonic()
            try:
                manifest = extract_rest(
                    client,
                    bucket,
                    day,
                    source,
                    path=config.settings["path"],
                    params=config.params(day.start.isoformat(), day.end.isoformat()),
                    pagination=pagination,
                    data_selector=config.settings.get("data_selector"),
                    part_rows=part_rows,
                )
            except requests.RequestException as exc:
                raise Failure(
                    f"{source} {day}: the source failed after retries ({exc}); what landed so far "
                    "is checkpointed and the next run resumes from it",
                    EXIT_SOURCE_UNAVAILABLE,
                ) from exc
            seconds = time.monotonic() - started
            if run_metrics is not None:
                run_metrics.extracted(
                    source, manifest.interval_start, manifest.row_count, manifest.bytes, seconds
                )
            emit(manifest_result(manifest, seconds))


def _extract_table(config: Source, interval: Interval | None, bucket: Bucket, part_rows: int) -> None:
    """`extract` for a postgres source: changed rows per day in one snapshot, then the watermark."""
    import psycopg

    from extract_load.sources.postgres import extract_table
    from extract_load.sources.registry import SourceConfigError

    try:
        dsn, table = config.env("dsn") or "", config.table_source()
    except SourceConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    with exit_codes():
        try:
            done = extract_table(
                dsn, bucket, config.name, table, interval, part_rows, f"postgresql:{table.table}"
            )
        except psycopg.OperationalError as exc:
            raise Failure(
                f"{config.name}: the database is unavailable ({exc})", EXIT_SOURCE_UNAVAILABLE
            ) from exc
        except psycopg.Error as exc:  # a table or column that is not there: the configuration's error
            raise click.ClickException(f"{config.name}: {exc}") from exc
    emit_landed(done.manifests, {"source": config.name, **done.as_dict()})


def _extract_declared_file(
    config: Source, interval: Interval, bucket: Bucket, part_rows: int, policy: QuarantinePolicy
) -> None:
    """`extract` for a file or sheet source: where it is comes from the sources file and the environment."""
    from extract_load.sources.file import extract_file
    from extract_load.sources.registry import SourceConfigError
    from extract_load.sources.sheets import extract_sheet

    try:
        where = config.env("location" if config.kind == "file" else "spreadsheet") or ""
    except SourceConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    with exit_codes():
        if config.kind == "file":
            done = extract_file(where, bucket, interval, config.name, part_rows, policy)
        else:
            done = extract_sheet(
                where, config.settings["range"], bucket, interval, config.name, policy=policy
            )
    emit_file_extract(done)


@click.command("extract-file")
@click.option(
    "--source",
    default="events",
    show_default=True,
    help="Source name (bucket prefix, raw table).",
    callback=options.name,
)
@click.option(
    "--path", "location", required=True, help="CSV, JSON lines, xlsx or Parquet: a path or an http(s) URL."
)
@click.option("--start", default=None, help="Interval start (local date); default: the file's first day.")
@click.option(
    "--end", default=None, help="Interval end (exclusive); default start + 1 day, or the file's end."
)
@options.bucket_option
@click.option("--part-rows", type=int, default=250_000, show_default=True)
@click.option(
    "--max-days",
    type=click.IntRange(1),
    envvar="EXTRACT_MAX_DAYS",
    default=400,
    show_default=True,
    help="Without --start, refuse a file whose records span more days than this (a stray date).",
)
@options.quarantine_policy_options
def extract_file_command(
    source: str,
    location: str,
    start: str | None,
    end: str | None,
    bucket_url: str,
    part_rows: int,
    max_days: int,
    max_quarantine_ratio: float,
    event_types: str | None,
) -> None:
    """Land the days of a file drop (an app export, a dataset) into the bucket.

    Undatable records are quarantined here, with their reasons; the last
    line of output reconciles the file: records read = landed + quarantined
    + outside the interval.
    """
    from extract_load.sources.file import extract_file

    interval = options.optional_interval(start, end)
    policy = options.policy(max_quarantine_ratio, event_types, source)
    with exit_codes():
        done = extract_file(location, open_bucket(bucket_url), interval, source, part_rows, policy, max_days)
    emit_file_extract(done)


@click.command("describe-file")
@click.option("--path", "location", required=True, help="CSV, JSON lines, xlsx or Parquet: a path or a URL.")
@click.option(
    "--source",
    default="events",
    show_default=True,
    help="Judge the records by this source's contract.",
    callback=options.name,
)
@click.option("--max-days", type=click.IntRange(1), envvar="EXTRACT_MAX_DAYS", default=400, show_default=True)
@options.quarantine_policy_options
def describe_file_command(
    location: str, source: str, max_days: int, max_quarantine_ratio: float, event_types: str | None
) -> None:
    """What a file drop holds, landing nothing: records, its days (first, end), what would be quarantined."""
    from extract_load.sources.file import describe_file

    with exit_codes():
        described = describe_file(
            location, options.policy(max_quarantine_ratio, event_types, source), max_days
        )
    emit(described.as_dict())


@click.command("extract-sheet")
@click.option(
    "--source", required=True, help="Source name (bucket prefix, raw table).", callback=options.name
)
@click.option("--spreadsheet-id", envvar="SHEET_ID", required=True)
@click.option(
    "--range", "cell_range", required=True, help="A1 range whose first row is the header, e.g. Events!A:J."
)
@click.option("--start", default=None, help="Interval start (local date); default: every day in the range.")
@click.option("--end", default=None)
@options.bucket_option
@options.quarantine_policy_options
def extract_sheet_command(
    source: str,
    spreadsheet_id: str,
    cell_range: str,
    start: str | None,
    end: str | None,
    bucket_url: str,
    max_quarantine_ratio: float,
    event_types: str | None,
) -> None:
    """Land a Google Sheets range through the Sheets API (Application Default Credentials)."""
    from extract_load.sources.sheets import extract_sheet

    interval = options.optional_interval(start, end)
    policy = options.policy(max_quarantine_ratio, event_types, source)
    with exit_codes():
        done = extract_sheet(
            spreadsheet_id, cell_range, open_bucket(bucket_url), interval, source, policy=policy
        )
    emit_file_extract(done)


@click.command("extract-drive")
@click.option(
    "--source", required=True, help="Source name (bucket prefix, raw table).", callback=options.name
)
@click.option(
    "--file-id", required=True, callback=options.drive_file_id, help="Drive file id of an xlsx file."
)
@click.option("--start", default=None, help="Interval start (local date); default: every day in the file.")
@click.option("--end", default=None)
@options.bucket_option
@options.quarantine_policy_options
def extract_drive_command(
    source: str,
    file_id: str,
    start: str | None,
    end: str | None,
    bucket_url: str,
    max_quarantine_ratio: float,
    event_types: str | None,
) -> None:
    """Land an xlsx file from Google Drive (first sheet) through the Drive API."""
    from extract_load.sources.sheets import extract_drive_xlsx

    interval = options.optional_interval(start, end)
    policy = options.policy(max_quarantine_ratio, event_types, source)
    with exit_codes():
        done = extract_drive_xlsx(file_id, open_bucket(bucket_url), interval, source, policy=policy)
    emit_file_extract(done)
