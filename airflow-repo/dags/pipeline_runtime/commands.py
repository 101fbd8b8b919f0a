"""The command lines of the subprojects, identical in every environment.

The DAGs only choose arguments (mainly the data interval). Where a command
runs (a subprocess in a local venv or a container image) and what it talks to
(bucket, warehouse, dbt target) is configuration of the runner's environment,
so the DAG code never changes between sandbox, staging and prod.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace

from pipeline_runtime.settings import settings


@dataclass(frozen=True)
class Command:
    """One CLI invocation: which subproject's program, its arguments, extra env.

    `argv` is what runs here (the program may be a venv path);
    `image_argv` is the same invocation inside the component's image, where
    the program is the name on the image's PATH. Only the program differs.
    """

    component: str
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    secret_env: frozenset[str] = frozenset()
    image_argv: tuple[str, ...] = ()
    # Run this image instead of the environment's release (a candidate being validated).
    image: str | None = None

    def display(self) -> str:
        return shlex.join(self.argv)

    @property
    def in_image(self) -> tuple[str, ...]:
        return self.image_argv or self.argv


def _program(component: str, default: str) -> list[str]:
    """The executable for a component; locally a venv path, in an image a PATH name."""
    value = settings().command(component, default)
    return shlex.split(value)


def _command(
    component: str,
    program: str,
    args: tuple[str, ...],
    env: dict[str, str] | None = None,
    secret_env: frozenset[str] = frozenset(),
) -> Command:
    return Command(component, (*_program(component, program), *args), env or {}, secret_env, (program, *args))


def extract_source(source: str, start: str, end: str) -> Command:
    """Extract any batch source (REST, file, sheet) by name: its settings come from the environment."""
    return _command(
        "scripts", "extract-load", ("extract", "--source", source, "--start", start, "--end", end)
    )


def load(source: str, start: str, end: str) -> Command:
    return _command("scripts", "extract-load", ("load", "--source", source, "--start", start, "--end", end))


def stream(source: str, max_messages: int, until_idle: float, max_wait: float = 5.0) -> Command:
    """A bounded Kafka consumer run; topic, brokers and credentials come from the environment."""
    args = ("stream", "--source", source, "--max-messages", str(max_messages))
    return _command(
        "scripts", "extract-load", (*args, "--until-idle", str(until_idle), "--max-wait", str(max_wait))
    )


def prune(source: str, keep_days: int, today: str) -> Command:
    """Remove the source's landed days older than the retention period (whole days)."""
    args = ("prune", "--source", source, "--keep-days", str(keep_days), "--today", today)
    return _command("scripts", "extract-load", args)


def dbt(*args: str) -> Command:
    return _command("dbt", "dbt", args)


def dbt_with(candidate: str, *args: str, env: dict[str, str] | None = None) -> Command:
    """dbt from a specific build: an image reference where commands run in images, else an executable."""
    if settings().runs_images:
        return Command("dbt", ("dbt", *args), env or {}, image=candidate)
    return Command("dbt", (*shlex.split(candidate), *args), env or {}, image_argv=("dbt", *args))


def warehouse_snapshot(image: str | None = None) -> Command:
    """The tables BI tools read, copied where no build locks them (a DuckDB warehouse only; it ships
    in the dbt image, and `image` is the dbt build the models ran with)."""
    command = _command("warehouse_snapshot", "warehouse-snapshot", ())
    return replace(command, image=image) if image else command


def publish_docs(image: str | None = None) -> Command:
    """The dbt docs site, generated from the warehouse just built (in the dbt image, as the dashboard)."""
    command = _command("docs", "publish-docs", ())
    return replace(command, image=image) if image else command


def publish_data(image: str | None = None) -> Command:
    """The public data exports, typed and described by the docs `publish_docs` published."""
    command = _command("data_export", "publish-data", ())
    return replace(command, image=image) if image else command


def publish_dashboard(image: str | None = None) -> Command:
    """The dashboard publisher ships in the dbt image: `image` is the dbt build the models ran with."""
    command = _command("dashboard", "publish-dashboard", ())
    return replace(command, image=image) if image else command
