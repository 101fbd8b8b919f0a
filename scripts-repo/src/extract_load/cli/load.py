"""`load`: landed days into the warehouse's raw tables, replacing each one."""

from __future__ import annotations

import click

from extract_load.cli import options
from extract_load.cli.errors import exit_codes
from extract_load.cli.output import emit, metrics
from extract_load.landing.bucket import open_bucket


@click.command()
@click.option("--source", default="events", show_default=True, callback=options.name)
@click.option("--start", required=True, help="Interval start, local date YYYY-MM-DD.")
@click.option("--end", default=None, help="Interval end (exclusive); default start + 1 day.")
@options.bucket_option
@click.option(
    "--warehouse",
    envvar="WAREHOUSE_URL",
    required=True,
    help="duckdb:///path/to/file.duckdb (or a plain path), bigquery://[project]/dataset, or "
    "snowflake://[account]/database[/schema][?warehouse=W&role=R] (key pair or OAuth token: SNOWFLAKE_*).",
)
@click.option("--schema", default="raw", show_default=True, callback=options.name)
@options.quarantine_policy_options
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
    from extract_load.load.reconcile import LoadResult
    from extract_load.load.targets import load_days, parse_warehouse

    try:
        target = parse_warehouse(warehouse)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--warehouse") from exc
    contract = options.policy(max_quarantine_ratio, event_types, source).contract
    run_metrics = metrics()

    def report(result: LoadResult) -> None:
        if run_metrics is not None:
            run_metrics.loaded(
                source,
                result.interval.start.isoformat(),
                result.rows_in,
                result.loaded,
                result.reasons or {},
                result.bytes,
                result.seconds,
            )
        emit(result.as_dict())

    days = options.interval(start, end).days()
    with exit_codes():
        load_days(
            target, open_bucket(bucket_url), source, days, schema, contract, max_quarantine_ratio, report
        )
