"""`prune`: the bucket's retention, whole landed days at a time."""

from __future__ import annotations

import datetime as dt

import click

from extract_load.cli import options
from extract_load.cli.output import emit
from extract_load.landing.bucket import open_bucket


@click.command()
@click.option("--source", required=True, help="Source name (bucket prefix).", callback=options.name)
@options.bucket_option
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
    from extract_load.landing.retention import prune as prune_days

    reference = dt.date.fromisoformat(today) if today else dt.datetime.now(dt.UTC).date()
    result = prune_days(open_bucket(bucket_url), source, keep_days, reference, dry_run)
    emit({**result.as_dict(), "dry_run": dry_run})
