"""`extract-load`: the one command line every environment runs.

Airflow calls the same command locally (a subprocess in this package's venv)
and on Kubernetes (this package's image), so every option can also come from an
environment variable and secrets only ever come from the environment.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import click

from extract_load import __version__
from extract_load.bucket import Bucket, open_bucket
from extract_load.intervals import Interval
from extract_load.landing import Manifest
from extract_load.observability import RunMetrics, progress

if TYPE_CHECKING:  # the sources module imports dlt: keep it off the start-up path
    from extract_load.file_source import FileExtract
    from extract_load.schema import QuarantinePolicy
    from extract_load.sources import Source

# Exit codes Airflow (or any caller) can act on.
EXIT_QUARANTINE_THRESHOLD = 3  # data problem: a person must look; retrying will not help
EXIT_LANDING_INVALID = 4  # the interval's landing is missing or corrupt: re-run the extract
EXIT_RECONCILIATION = 5  # counts do not add up: a bug or tampering; nothing was committed
EXIT_SOURCE_UNAVAILABLE = 6  # the source kept failing after retries: retry later


class Failure(click.ClickException):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _emit(result: dict[str, object]) -> None:
    """Results go to stdout as one JSON line so orchestrators can parse them.

    A pod's stdout is only a log to Kubernetes, so when `RESULTS_FILE` is set
    (KubernetesPodOperator's `/airflow/xcom/return.json`) every result so far is
    also written there as one JSON list: the task's XCom is then the same list
    the local runner parses from stdout.
    """
    from extract_load.redaction import redact

    result = json.loads(redact(json.dumps(result)))
    click.echo(json.dumps(result, sort_keys=True))
    results_file = os.environ.get("RESULTS_FILE")
    if results_file:
        path = Path(results_file)
        earlier = json.loads(path.read_text()) if path.is_file() and path.stat().st_size else []
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(path.name + ".tmp")
        scratch.write_text(json.dumps([*earlier, result], sort_keys=True))
        scratch.replace(path)


def _manifest_result(manifest: Manifest, seconds: float | None = None) -> dict[str, object]:
    result: dict[str, object] = {
        "source": manifest.source,
        "interval_start": manifest.interval_start,
        "rows": manifest.row_count,
        "bytes": manifest.bytes,
        "parts": len(manifest.parts),
        "run_id": manifest.run_id,
    }
    if seconds is not None:
        result["seconds"] = round(seconds, 3)
    return result


def _name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback: a source or schema name is an identifier and a path segment, checked here."""
    from extract_load.names import InvalidNameError, checked_name

    if value is None:
        return None
    try:
        return checked_name(value, f"--{param.name}")
    except InvalidNameError as exc:
        raise click.BadParameter(str(exc)) from exc


def _drive_file_id(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from extract_load.names import InvalidNameError, checked_drive_file_id

    try:
        return checked_drive_file_id(value)
    except InvalidNameError as exc:
        raise click.BadParameter(str(exc)) from exc


def quarantine_policy_options(command: Callable[..., None]) -> Callable[..., None]:
    """`--max-quarantine-ratio` and `--event-types`: one policy for every command that judges records."""
    command = click.option(
        "--event-types",
        envvar="EVENT_TYPES",
        default=None,
        help="Comma-separated accepted event types (default: the app's known types).",
    )(command)
    return click.option(
        "--max-quarantine-ratio",
        type=click.FloatRange(0, 1),
        envvar="MAX_QUARANTINE_RATIO",
        default=0.05,
        show_default=True,
        help="Fail, landing or loading nothing, when a larger share is quarantined (of a file, of a day).",
    )(command)


def _policy(max_quarantine_ratio: float, event_types: str | None) -> QuarantinePolicy:
    from extract_load.schema import KNOWN_EVENT_TYPES, QuarantinePolicy

    accepted = (
        frozenset(t.strip().lower() for t in event_types.split(",") if t.strip())
        if event_types
        else KNOWN_EVENT_TYPES
    )
    return QuarantinePolicy(accepted, max_quarantine_ratio)


def _interval(start: str, end: str | None) -> Interval:
    try:
        return Interval.parse(start, end)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


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


@main.command()
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
    from extract_load.generator import GeneratorSpec, write_parquet

    first = dt.date.fromisoformat(start)
    if users is None:
        spec = GeneratorSpec.for_event_count(events or 50_000, first, days, seed, with_gender)
    else:
        spec = GeneratorSpec(first, days, users, seed, with_gender)
    count = write_parquet(spec, out)
    _emit({"events": count, "users": spec.users, "days": days, "seed": seed, "path": str(out)})


@main.command("serve-api")
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
def serve_api(source: Path, host: str, port: int, url_file: Path | None) -> None:
    """Serve an event stream over HTTP as a paginated, interval-filtered events API."""
    from extract_load.events_api import SourceError, serve

    try:
        server = serve(source, host, port, token=os.environ.get("EVENTS_API_TOKEN") or None)
    except SourceError as exc:
        raise click.ClickException(str(exc)) from exc
    url = f"http://{host}:{server.server_port}"
    if url_file is not None:
        tmp = url_file.with_suffix(".tmp")
        tmp.write_text(url + "\n")
        tmp.replace(url_file)
    click.echo(f"events API on {url}", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@main.command()
@click.option(
    "--source",
    default="events",
    show_default=True,
    help="A REST source from the sources file.",
    callback=_name,
)
@click.option("--start", required=True, help="Interval start, local date YYYY-MM-DD.")
@click.option("--end", default=None, help="Interval end (exclusive); default start + 1 day.")
@click.option("--api-url", default=None, help="Override the source's base URL.")
@click.option("--bucket", "bucket_url", envvar="BUCKET_URL", required=True, help="Bucket URL or folder.")
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
@quarantine_policy_options
def extract(
    source: str,
    start: str,
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

    from extract_load.extract import extract_rest
    from extract_load.http_source import RestClient
    from extract_load.sources import SourceConfigError, load_sources

    config = load_sources().get(source)
    if config is None:
        raise click.BadParameter(f"{source!r} is not in the sources file", param_hint="--source")
    if config.kind in BATCH_FILE_KINDS:
        policy = _policy(max_quarantine_ratio, event_types)
        _extract_landed_file(config, _interval(start, end), open_bucket(bucket_url), part_rows, policy)
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
    metrics = click.get_current_context().find_object(RunMetrics)
    days = _interval(start, end).days()
    with (
        _exit_codes(),
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
            if metrics is not None:
                metrics.extracted(
                    source, manifest.interval_start, manifest.row_count, manifest.bytes, seconds
                )
            _emit(_manifest_result(manifest, seconds))


# Sources whose extract reads a whole file or sheet and lands the days asked for.
BATCH_FILE_KINDS = frozenset({"file", "sheets"})


def _extract_landed_file(
    config: Source, interval: Interval, bucket: Bucket, part_rows: int, policy: QuarantinePolicy
) -> None:
    """`extract` for a file or sheet source: where it is comes from the sources file and the environment."""
    from extract_load.file_source import extract_file
    from extract_load.sheets_source import extract_sheet
    from extract_load.sources import SourceConfigError

    try:
        where = config.env("location" if config.kind == "file" else "spreadsheet") or ""
    except SourceConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    with _exit_codes():
        if config.kind == "file":
            done = extract_file(where, bucket, interval, config.name, part_rows, policy)
        else:
            done = extract_sheet(
                where, config.settings["range"], bucket, interval, config.name, policy=policy
            )
    _emit_file_extract(done)


@contextlib.contextmanager
def _exit_codes() -> Iterator[None]:
    """The one place where what went wrong becomes the exit code a caller acts on (EXIT_* above)."""
    from extract_load.file_source import FileSourceError
    from extract_load.landing import ManifestError
    from extract_load.warehouse import QuarantineThresholdError, ReconciliationError

    try:
        yield
    except ManifestError as exc:  # missing, corrupt, or another run holds or committed the interval
        raise Failure(str(exc), EXIT_LANDING_INVALID) from exc
    except QuarantineThresholdError as exc:
        raise Failure(str(exc), EXIT_QUARANTINE_THRESHOLD) from exc
    except ReconciliationError as exc:
        raise Failure(str(exc), EXIT_RECONCILIATION) from exc
    except (FileSourceError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


@main.group()
def sources() -> None:
    """The configured sources (SOURCES_FILE, or the packaged sources.yaml)."""


@sources.command("list")
def sources_list() -> None:
    """One line per source: kind, description, and which settings are set (never their values)."""
    from extract_load.sources import load_sources

    for source in load_sources().values():
        settings = {
            name: {"env": var, "set": bool(os.environ.get(var))} for name, var in source.env_names().items()
        }
        _emit(
            {
                "source": source.name,
                "kind": source.kind,
                "description": source.description,
                "settings": settings,
            }
        )


@sources.command("check")
@click.argument("names", nargs=-1)
@click.option("--timeout", type=float, default=10.0, show_default=True)
def sources_check(names: tuple[str, ...], timeout: float) -> None:
    """Reach each source once (all of them by default); exit 1 if any cannot be reached."""
    from extract_load.sources import check, load_sources

    configured = load_sources()
    unknown = sorted(set(names) - set(configured))
    if unknown:
        raise click.BadParameter(f"unknown source(s) {', '.join(unknown)}", param_hint="NAMES")
    reports = [check(configured[name], timeout) for name in (names or tuple(configured))]
    for report in reports:
        _emit(report)
    if not all(report["ok"] for report in reports):
        raise click.exceptions.Exit(1)


@main.command("extract-file")
@click.option(
    "--source",
    default="events",
    show_default=True,
    help="Source name (bucket prefix, raw table).",
    callback=_name,
)
@click.option(
    "--path", "location", required=True, help="CSV, JSON lines, xlsx or Parquet: a path or an http(s) URL."
)
@click.option("--start", default=None, help="Interval start (local date); default: the file's first day.")
@click.option(
    "--end", default=None, help="Interval end (exclusive); default start + 1 day, or the file's end."
)
@click.option("--bucket", "bucket_url", envvar="BUCKET_URL", required=True, help="Bucket URL or folder.")
@click.option("--part-rows", type=int, default=250_000, show_default=True)
@click.option(
    "--max-days",
    type=click.IntRange(1),
    envvar="EXTRACT_MAX_DAYS",
    default=400,
    show_default=True,
    help="Without --start, refuse a file whose records span more days than this (a stray date).",
)
@quarantine_policy_options
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
    from extract_load.file_source import extract_file

    interval = _interval(start, end) if start else None
    policy = _policy(max_quarantine_ratio, event_types)
    with _exit_codes():
        done = extract_file(location, open_bucket(bucket_url), interval, source, part_rows, policy, max_days)
    _emit_file_extract(done)


@main.command("describe-file")
@click.option("--path", "location", required=True, help="CSV, JSON lines, xlsx or Parquet: a path or a URL.")
@click.option("--max-days", type=click.IntRange(1), envvar="EXTRACT_MAX_DAYS", default=400, show_default=True)
@quarantine_policy_options
def describe_file_command(
    location: str, max_days: int, max_quarantine_ratio: float, event_types: str | None
) -> None:
    """What a file drop holds, landing nothing: records, its days (first, end), what would be quarantined."""
    from extract_load.file_source import describe_file

    with _exit_codes():
        described = describe_file(location, _policy(max_quarantine_ratio, event_types), max_days)
    _emit(described.as_dict())


def _emit_file_extract(done: FileExtract) -> None:
    """One line per landed day, then the file's reconciliation."""
    metrics = click.get_current_context().find_object(RunMetrics)
    for manifest in done.manifests:
        if metrics is not None:
            metrics.extracted(
                manifest.source, manifest.interval_start, manifest.row_count, manifest.bytes, 0.0
            )
        _emit(_manifest_result(manifest))
    _emit(done.as_dict())


@main.command("extract-sheet")
@click.option("--source", required=True, help="Source name (bucket prefix, raw table).", callback=_name)
@click.option("--spreadsheet-id", envvar="SHEET_ID", required=True)
@click.option(
    "--range", "cell_range", required=True, help="A1 range whose first row is the header, e.g. Events!A:J."
)
@click.option("--start", default=None, help="Interval start (local date); default: every day in the range.")
@click.option("--end", default=None)
@click.option("--bucket", "bucket_url", envvar="BUCKET_URL", required=True)
@quarantine_policy_options
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
    from extract_load.sheets_source import extract_sheet

    interval = _interval(start, end) if start else None
    policy = _policy(max_quarantine_ratio, event_types)
    with _exit_codes():
        done = extract_sheet(
            spreadsheet_id, cell_range, open_bucket(bucket_url), interval, source, policy=policy
        )
    _emit_file_extract(done)


@main.command("extract-drive")
@click.option("--source", required=True, help="Source name (bucket prefix, raw table).", callback=_name)
@click.option("--file-id", required=True, callback=_drive_file_id, help="Drive file id of an xlsx file.")
@click.option("--start", default=None, help="Interval start (local date); default: every day in the file.")
@click.option("--end", default=None)
@click.option("--bucket", "bucket_url", envvar="BUCKET_URL", required=True)
@quarantine_policy_options
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
    from extract_load.sheets_source import extract_drive_xlsx

    interval = _interval(start, end) if start else None
    policy = _policy(max_quarantine_ratio, event_types)
    with _exit_codes():
        done = extract_drive_xlsx(file_id, open_bucket(bucket_url), interval, source, policy=policy)
    _emit_file_extract(done)


@main.command()
@click.option("--source", required=True, help="Source name (bucket prefix).", callback=_name)
@click.option("--bucket", "bucket_url", envvar="BUCKET_URL", required=True, help="Bucket URL or folder.")
@click.option(
    "--keep-days",
    envvar="BUCKET_RETENTION_DAYS",
    type=click.IntRange(1),
    default=400,
    show_default=True,
    help="Landed days younger than this stay (they are what reloads replay).",
)
@click.option("--today", default=None, help="Reference day (YYYY-MM-DD, default: today in UTC).")
@click.option("--dry-run", is_flag=True, help="Say what would be removed, remove nothing.")
def prune(source: str, bucket_url: str, keep_days: int, today: str | None, dry_run: bool) -> None:
    """Remove landed days older than the retention period from the bucket, whole days only."""
    from extract_load.retention import prune as prune_days

    reference = dt.date.fromisoformat(today) if today else dt.datetime.now(dt.UTC).date()
    result = prune_days(open_bucket(bucket_url), source, keep_days, reference, dry_run)
    _emit({**result.as_dict(), "dry_run": dry_run})


@main.command()
@click.option(
    "--source",
    default="events_stream",
    show_default=True,
    help="Source name (bucket prefix, raw table); not one the sources file declares as a batch source.",
    callback=_name,
)
@click.option("--topic", envvar="KAFKA_TOPIC", required=True)
@click.option("--bootstrap-servers", envvar="KAFKA_BOOTSTRAP_SERVERS", required=True)
@click.option("--group", envvar="KAFKA_GROUP_ID", default="extract-load", show_default=True)
@click.option("--bucket", "bucket_url", envvar="BUCKET_URL", required=True, help="Bucket URL or folder.")
@click.option("--max-batch", type=click.IntRange(1), default=10_000, show_default=True)
@click.option("--max-wait", type=float, default=30.0, show_default=True, help="Seconds to fill a batch.")
@click.option("--until-idle", type=float, default=None, help="Stop after this many seconds without messages.")
@click.option("--max-batches", type=click.IntRange(1), default=None, help="Stop after this many batches.")
@click.option(
    "--max-messages",
    type=click.IntRange(1),
    default=None,
    help="Stop after the batch that reaches this many messages (a bounded run for a scheduler).",
)
@click.option("--config", "extra_config", multiple=True, help="librdkafka setting KEY=VALUE (repeatable).")
def stream(
    source: str,
    topic: str,
    bootstrap_servers: str,
    group: str,
    bucket_url: str,
    max_batch: int,
    max_wait: float,
    until_idle: float | None,
    max_batches: int | None,
    max_messages: int | None,
    extra_config: tuple[str, ...],
) -> None:
    """Consume a Kafka topic in micro-batches into the bucket; offsets move after the data is durable."""
    from extract_load.sources import load_sources
    from extract_load.stream import consume

    declared = load_sources().get(source)
    if declared is not None and declared.kind != "kafka":
        # Its days are replaced whole by `extract`, which would delete the stream's committed batches.
        raise click.BadParameter(
            f"{source!r} is a {declared.kind} source in the sources file: a source is fed either by "
            "extracts or by a stream, never both; stream into another name (a kafka source)",
            param_hint="--source",
        )

    config: dict[str, object] = {"bootstrap.servers": bootstrap_servers, "group.id": group}
    if os.environ.get("KAFKA_SASL_USERNAME"):
        config.update(
            {
                "security.protocol": os.environ.get("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
                "sasl.mechanisms": os.environ.get("KAFKA_SASL_MECHANISM", "PLAIN"),
                "sasl.username": os.environ["KAFKA_SASL_USERNAME"],
                "sasl.password": os.environ.get("KAFKA_SASL_PASSWORD", ""),
            }
        )
    for item in extra_config:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--config")
        config[key.strip()] = value.strip()
    with _exit_codes():  # a batch not in a manifest (exit 4) has not moved its offsets
        stats = consume(
            open_bucket(bucket_url),
            source,
            config,
            topic,
            max_batch,
            max_wait,
            until_idle,
            max_batches,
            max_messages,
        )
    metrics = click.get_current_context().find_object(RunMetrics)
    if metrics is not None:
        for (lag_topic, partition), lag in stats.lag.items():
            metrics.consumer_lag(source, lag_topic, partition, lag)
    _emit({"source": source, "topic": topic, **stats.as_dict()})


@main.command()
@click.option("--source", default="events", show_default=True, callback=_name)
@click.option("--start", required=True, help="Interval start, local date YYYY-MM-DD.")
@click.option("--end", default=None, help="Interval end (exclusive); default start + 1 day.")
@click.option("--bucket", "bucket_url", envvar="BUCKET_URL", required=True)
@click.option(
    "--warehouse",
    envvar="WAREHOUSE_URL",
    required=True,
    help="duckdb:///path/to/file.duckdb (or a plain path), or bigquery://[project]/dataset.",
)
@click.option("--schema", default="raw", show_default=True, callback=_name)
@quarantine_policy_options
def load(
    source: str,
    start: str,
    end: str | None,
    bucket_url: str,
    warehouse: str,
    schema: str,
    max_quarantine_ratio: float,
    event_types: str | None,
) -> None:
    """Load landed intervals into the warehouse raw table, replacing each one."""
    from extract_load.warehouse import (
        LoadResult,
        load_duckdb_days,
    )

    accepted = _policy(max_quarantine_ratio, event_types).event_types
    bucket = open_bucket(bucket_url)
    parsed = urlparse(warehouse)
    if parsed.scheme == "bigquery":
        from extract_load.bigquery_load import BigQueryTarget, load_bigquery

        target = BigQueryTarget.parse(warehouse)

        def run(day: Interval) -> LoadResult:
            return load_bigquery(bucket, source, day, target, None, accepted, max_quarantine_ratio)
    elif parsed.scheme not in ("", "duckdb"):
        raise click.BadParameter(f"unsupported warehouse {warehouse!r}", param_hint="--warehouse")
    metrics = click.get_current_context().find_object(RunMetrics)
    days = _interval(start, end).days()

    def report(result: LoadResult) -> None:
        if metrics is not None:
            metrics.loaded(
                source,
                result.interval.start.isoformat(),
                result.rows_in,
                result.loaded,
                result.reasons or {},
                result.bytes,
                result.seconds,
            )
        _emit(result.as_dict())

    with _exit_codes():
        if parsed.scheme == "bigquery":
            for day in progress(days, f"load {source}", len(days)):
                report(run(day))
        else:
            # DuckDB: days in batches (one scan each), each day checked as if loaded alone.
            path = Path(parsed.path if parsed.scheme else warehouse)
            load_duckdb_days(bucket, source, days, path, schema, accepted, max_quarantine_ratio, report)


if __name__ == "__main__":
    main()
