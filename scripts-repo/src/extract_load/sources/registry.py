"""Sources by configuration: what each one is, where its settings come from,
and a cheap check that it can be reached, so an operator can ask
`extract-load sources check` before a run fails at 3 a.m."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from extract_load.contract import EVENTS, Contract, ContractError, load_contract
from extract_load.names import InvalidNameError, checked_name
from extract_load.settings import settings

if TYPE_CHECKING:  # the REST client imports dlt: only a REST extract needs it
    from extract_load.sources.http import Auth, Pagination
    from extract_load.sources.postgres import TableSource


class SourceConfigError(ValueError):
    pass


KINDS = frozenset({"rest", "file", "kafka", "sheets", "postgres"})


@dataclass(frozen=True)
class Source:
    name: str
    kind: str
    description: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    # What its records must hold (`contract:` in the sources file; the app's events by default).
    contract: Contract = EVENTS

    def env_names(self) -> dict[str, str]:
        """Setting -> environment variable, for every setting that comes from the environment."""
        names = {k.removesuffix("_env"): v for k, v in self.settings.items() if k.endswith("_env")}
        if "auth" in self.settings and self.settings["auth"].get("secret_env"):
            names["auth"] = self.settings["auth"]["secret_env"]
        return names

    def env(self, setting: str, required: bool = True) -> str | None:
        variable = self.env_names().get(setting)
        value = settings().declared(variable)
        if required and not value:
            raise SourceConfigError(f"source {self.name}: set {variable or setting} ({setting})")
        return value

    def pagination(self) -> Pagination:
        from extract_load.sources.http import Pagination

        return Pagination(**self.settings.get("pagination", {}))

    def auth(self) -> Auth:
        from extract_load.sources.http import Auth

        spec = dict(self.settings.get("auth", {}))
        kind = spec.pop("kind", "none")
        secret_env = spec.pop("secret_env", None)
        secret = settings().declared(secret_env)
        return Auth(kind=kind, secret=secret, **spec) if secret else Auth()

    def table_source(self) -> TableSource:
        """A postgres source's table, read by its contract's time column and key."""
        from extract_load.sources.postgres import TableSource

        try:
            return TableSource(
                table=str(self.settings["table"]),
                time_column=self.contract.time_column,
                key=tuple(self.settings.get("key") or self.contract.primary_key),
                lookback_days=int(self.settings.get("lookback_days", 1)),
                page_size=int(self.settings.get("page_size", 10_000)),
            )
        except (KeyError, ValueError, InvalidNameError) as exc:
            raise SourceConfigError(f"source {self.name}: {exc}") from exc

    def params(self, start: str, end: str) -> dict[str, str]:
        return {k: str(v).format(start=start, end=end) for k, v in self.settings.get("params", {}).items()}


def load_sources(path: Path | None = None) -> dict[str, Source]:
    location = path or settings().sources_file
    if location is not None:
        text = location.read_text()
    else:
        text = resources.files("extract_load").joinpath("config/sources.yaml").read_text()
    document = yaml.safe_load(text) or {}
    sources = {}
    for name, spec in (document.get("sources") or {}).items():
        try:
            checked_name(str(name), "source")
        except InvalidNameError as exc:
            raise SourceConfigError(f"{location or 'sources.yaml'}: {exc}") from exc
        spec = dict(spec)
        kind = spec.pop("kind", None)
        if kind not in KINDS:
            raise SourceConfigError(f"source {name}: unknown kind {kind!r}")
        try:
            contract = load_contract(spec.pop("contract", "events"), location.parent if location else None)
        except (ContractError, InvalidNameError) as exc:
            raise SourceConfigError(f"source {name}: {exc}") from exc
        sources[name] = Source(name, kind, spec.pop("description", ""), spec, contract)
    return sources


def contract_for(source: str) -> Contract:
    """The contract `source` is held to: the sources file's, or the app's events for an undeclared name.

    An undeclared name (`extract-file --source any_name`) keeps working as it
    always has, held to the events contract.
    """
    declared = load_sources().get(source)
    return declared.contract if declared is not None else EVENTS


def check(source: Source, timeout: float = 10.0) -> dict[str, Any]:
    """Reach the source once, cheaply. Returns a report; raises nothing for a failed reach."""
    report: dict[str, Any] = {"source": source.name, "kind": source.kind}
    missing = [
        v
        for v in source.env_names().values()
        if not settings().declared(v) and v != source.env_names().get("auth")
    ]
    if missing:
        return {**report, "ok": False, "error": f"not configured: set {', '.join(missing)}"}
    try:
        if source.kind == "rest":
            from extract_load.sources.http import RestClient

            with RestClient(
                source.env("base_url") or "", auth=source.auth(), max_attempts=2, timeout_seconds=timeout
            ) as c:
                c.get_json(source.settings.get("health_path", source.settings["path"]))
        elif source.kind == "file":
            location = source.env("location") or ""
            if location.startswith(("http://", "https://")):
                import requests

                requests.head(location, timeout=timeout, allow_redirects=True).raise_for_status()
            elif not Path(location).is_file():
                raise FileNotFoundError(location)
        elif source.kind == "postgres":
            from extract_load.sources.postgres import check_table

            check_table(source.env("dsn") or "", source.table_source(), timeout)
        elif source.kind == "kafka":
            from confluent_kafka.admin import AdminClient

            topic = source.env("topic") or ""
            metadata = AdminClient({"bootstrap.servers": source.env("bootstrap") or ""}).list_topics(
                topic, timeout=timeout
            )
            if metadata.topics[topic].error is not None:
                raise RuntimeError(str(metadata.topics[topic].error))
            report["partitions"] = len(metadata.topics[topic].partitions)
        else:
            from extract_load.sources.sheets import google_service

            header = source.settings["range"].split("!")[0] + "!1:1"
            google_service("sheets", "v4").spreadsheets().values().get(
                spreadsheetId=source.env("spreadsheet"), range=header
            ).execute()
    except Exception as exc:  # noqa: BLE001 - a check reports every failure instead of raising
        return {**report, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {**report, "ok": True}
