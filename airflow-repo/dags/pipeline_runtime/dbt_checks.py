"""The checks a dbt build must pass before `dbt_image_refresh` adopts it."""

from __future__ import annotations

import tempfile
from dataclasses import replace

from pipeline_runtime import commands, runner

# Unit tests are CI's (docs/adr/0009); data tests read the environment's warehouse.
DBT_ENV = {"DBT_EXCLUDE_RESOURCE_TYPES": "unit_test", "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"}


def check(candidate: str, *args: str, writes_target: bool = True) -> None:
    """Run `dbt <args>` with the candidate build; a non-zero exit fails the task."""
    if not writes_target:
        runner.run(commands.dbt_with(candidate, *args, env=DBT_ENV))
        return
    # A scratch target path: validating must not overwrite the manifest dbt_transform renders from.
    with tempfile.TemporaryDirectory(prefix="dbt-image-refresh-") as scratch:
        runner.run(commands.dbt_with(candidate, *args, "--target-path", scratch, env=DBT_ENV))


def check_pinned(*args: str) -> None:
    """Run `dbt <args>` with the environment's own dbt build (the post-deploy smoke check).

    A command that writes artifacts (parse) writes them to a scratch folder, never over the
    manifest dbt_transform renders from; `dbt debug` writes none and takes no target path."""
    if args[:1] == ("debug",):
        runner.run(replace(commands.dbt(*args), env=DBT_ENV))
        return
    with tempfile.TemporaryDirectory(prefix="dbt-smoke-check-") as scratch:
        runner.run(replace(commands.dbt(*args, "--target-path", scratch), env=DBT_ENV))
