"""The checks a dbt build must pass: before `dbt_image_refresh` adopts it, and after each deploy."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from dataclasses import replace

from pipeline_runtime import commands, runner

# Unit tests are CI's (docs/adr/0009); data tests read the environment's warehouse.
DBT_ENV = {"DBT_EXCLUDE_RESOURCE_TYPES": "unit_test", "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"}


def check(candidate: str, *args: str) -> None:
    """Run `dbt <args>` with the candidate build; a non-zero exit fails the task."""
    _run(functools.partial(commands.dbt_with, candidate), args, scratch_prefix="dbt-image-refresh-")


def check_pinned(*args: str) -> None:
    """Run `dbt <args>` with the environment's own dbt build (the post-deploy smoke check)."""
    _run(commands.dbt, args, scratch_prefix="dbt-smoke-check-")


def _run(build: Callable[..., commands.Command], args: tuple[str, ...], scratch_prefix: str) -> None:
    """A command that writes artifacts (parse, test) writes them to a scratch folder: checking a
    build must never overwrite the manifest dbt_transform renders from. `dbt debug` writes none
    and refuses a target path."""
    if args[:1] == ("debug",):
        runner.run(replace(build(*args), env=DBT_ENV))
        return
    with tempfile.TemporaryDirectory(prefix=scratch_prefix) as scratch:
        runner.run(replace(build(*args, "--target-path", scratch), env=DBT_ENV))
