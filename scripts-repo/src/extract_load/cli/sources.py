"""`sources list` and `sources check`: what the sources file declares, and whether each can be reached."""

from __future__ import annotations

import click

from extract_load.cli.output import emit


@click.group()
def sources() -> None:
    """The configured sources (SOURCES_FILE, or the packaged sources.yaml)."""


@sources.command("list")
def sources_list() -> None:
    """One line per source: kind, description, contract, which settings are set (never their values)."""
    from extract_load.settings import settings
    from extract_load.sources.registry import load_sources

    config = settings()
    for source in load_sources().values():
        declared = {
            name: {"env": var, "set": bool(config.declared(var))} for name, var in source.env_names().items()
        }
        emit(
            {
                "source": source.name,
                "kind": source.kind,
                "description": source.description,
                "settings": declared,
                "contract": source.contract.as_dict(),
            }
        )


@sources.command("ddl")
@click.argument("name")
@click.option("--dialect", type=click.Choice(["duckdb", "postgres"]), default="duckdb", show_default=True)
@click.option("--schema", default="raw", show_default=True)
def sources_ddl(name: str, dialect: str, schema: str) -> None:
    """The SQL that creates a source's raw tables, rendered from its contract (for your own warehouse)."""
    from extract_load.load.raw_tables import duckdb_ddl, postgres_ddl
    from extract_load.names import InvalidNameError, checked_name
    from extract_load.sources.registry import contract_for

    try:
        source, schema = checked_name(name, "source"), checked_name(schema, "--schema")
    except InvalidNameError as exc:
        raise click.BadParameter(str(exc)) from exc
    render = postgres_ddl if dialect == "postgres" else duckdb_ddl
    for statement in render(schema, source, contract_for(source)):
        click.echo(statement + ";")


@sources.command("check")
@click.argument("names", nargs=-1)
@click.option("--timeout", type=float, default=10.0, show_default=True)
def sources_check(names: tuple[str, ...], timeout: float) -> None:
    """Reach each source once (all of them by default); exit 1 if any cannot be reached."""
    from extract_load.sources.registry import check, load_sources

    configured = load_sources()
    unknown = sorted(set(names) - set(configured))
    if unknown:
        raise click.BadParameter(f"unknown source(s) {', '.join(unknown)}", param_hint="NAMES")
    reports = [check(configured[name], timeout) for name in (names or tuple(configured))]
    for report in reports:
        emit(report)
    if not all(report["ok"] for report in reports):
        raise click.exceptions.Exit(1)
