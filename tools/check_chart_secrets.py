"""Fail when a rendered chart holds a secret the chart generated itself.

The official Airflow chart generates a Fernet key, a JWT secret, an API
secret key (and, for Airflow 2, a webserver secret key) whenever its values
do not name a Secret for them. Argo CD renders the chart on every sync, so a
generated key changes with every sync. CI runs this on `helm template`'s
output for each environment (.github/workflows/ci-platform.yaml).

Usage: check_chart_secrets.py RENDERED.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

# The keys under which the chart puts what it generates.
GENERATED_KEYS = frozenset({"fernet-key", "jwt-secret", "api-secret-key", "webserver-secret-key"})


def generated_secrets(rendered: str) -> list[str]:
    """`name: keys` of each Secret in the rendered manifests that carries a generated key."""
    found = []
    for document in yaml.safe_load_all(rendered):
        if not isinstance(document, dict) or document.get("kind") != "Secret":
            continue
        keys = GENERATED_KEYS & {*(document.get("data") or {}), *(document.get("stringData") or {})}
        if keys:
            found.append(f"{document['metadata']['name']}: {', '.join(sorted(keys))}")
    return found


def main(argv: list[str]) -> int:
    found = generated_secrets(Path(argv[1]).read_text())
    for line in found:
        print(f"chart-generated secret (name it in the values instead): {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
