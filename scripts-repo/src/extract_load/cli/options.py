"""Options and checks several commands share, so each means the same thing everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from extract_load.intervals import Interval

if TYPE_CHECKING:
    from extract_load.contract import QuarantinePolicy


def name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback: a source or schema name is an identifier and a path segment, checked here."""
    from extract_load.names import InvalidNameError, checked_name

    if value is None:
        return None
    try:
        return checked_name(value, f"--{param.name}")
    except InvalidNameError as exc:
        raise click.BadParameter(str(exc)) from exc


def drive_file_id(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from extract_load.names import InvalidNameError, checked_drive_file_id

    try:
        return checked_drive_file_id(value)
    except InvalidNameError as exc:
        raise click.BadParameter(str(exc)) from exc


def bucket_option(command: Callable[..., None]) -> Callable[..., None]:
    """`--bucket`: a gs:// URL or a local folder (BUCKET_URL)."""
    return click.option(
        "--bucket", "bucket_url", envvar="BUCKET_URL", required=True, help="Bucket URL or folder."
    )(command)


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


def policy(
    max_quarantine_ratio: float, event_types: str | None, source: str | None = None
) -> QuarantinePolicy:
    """The source's contract (events for an undeclared name), `--event-types` applied, and the ratio."""
    from extract_load.contract import EVENTS, ContractError, QuarantinePolicy
    from extract_load.sources.registry import SourceConfigError, contract_for

    try:
        contract = contract_for(source) if source else EVENTS
    except SourceConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    if event_types:
        accepted = frozenset(t.strip().lower() for t in event_types.split(",") if t.strip())
        try:
            contract = contract.with_accepted_values("event_type", accepted)
        except ContractError as exc:
            raise click.BadParameter(str(exc), param_hint="--event-types") from exc
    return QuarantinePolicy(contract, max_quarantine_ratio)


def interval(start: str, end: str | None) -> Interval:
    try:
        return Interval.parse(start, end)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def optional_interval(start: str | None, end: str | None) -> Interval | None:
    return interval(start, end) if start else None
