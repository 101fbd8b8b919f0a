"""The environment's `airflow-runtime.yaml`, read and checked once for every command that uses it.

`ops.apply_runtime` (the bootstrap after each migration) applies it and
`ops.smoke_check` (after each deploy) verifies it; both read it here, so a file
one of them accepts the other cannot misread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# Where a connection's credentials come from. Only a workload-identity one is created by the
# bootstrap (it has none); the others are found where Airflow looks: its environment
# (AIRFLOW_CONN_<ID> from a Kubernetes Secret) or the configured secrets backend.
SOURCES = ("workload-identity", "kubernetes-secret", "secret-manager")
CONNECTION_KEYS = {"type", "from", "secret", "required_if", "description"}


def read_runtime(path: Path) -> dict[str, Any]:
    """The document, or SystemExit naming what is wrong: a bad file must stop a deploy, not half-apply."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise SystemExit(f"cannot read {path}: {error}") from error
    if not isinstance(document, dict):
        raise SystemExit(f"{path}: expected sections pools, variables, connections")
    unknown = set(document) - {"pools", "variables", "connections"}
    if unknown:
        raise SystemExit(f"{path}: unknown section(s) {', '.join(sorted(unknown))}")
    for name, spec in (document.get("pools") or {}).items():
        if not isinstance(spec, dict) or not isinstance(spec.get("slots"), int) or spec["slots"] < 1:
            raise SystemExit(f"{path}: pool {name!r} needs slots, a positive integer")
    for name, spec in (document.get("connections") or {}).items():
        spec = spec or {}
        extra = set(spec) - CONNECTION_KEYS
        if extra:
            # By reference only: a login, a password or an extra in git is a leaked credential.
            raise SystemExit(f"{path}: connection {name!r} may not hold {', '.join(sorted(extra))}")
        if not spec.get("type"):
            raise SystemExit(f"{path}: connection {name!r} needs its type")
        if spec.get("from") not in SOURCES:
            raise SystemExit(f"{path}: connection {name!r}: from must be one of {', '.join(SOURCES)}")
        if spec["from"] == "kubernetes-secret" and not spec.get("secret"):
            raise SystemExit(f"{path}: connection {name!r} comes from a Secret: name it (secret:)")
    return document


def env_var(conn_id: str) -> str:
    """The environment variable Airflow reads a connection from."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def where(conn_id: str, spec: dict[str, Any]) -> str:
    """Where the connection is expected to come from, for a message a person acts on."""
    if spec["from"] == "kubernetes-secret":
        return f"the Kubernetes Secret {spec['secret']}, key {env_var(conn_id)}"
    if spec["from"] == "secret-manager":
        return "the secrets backend (Secret Manager)"
    return "the bootstrap (Workload Identity, no credentials)"
