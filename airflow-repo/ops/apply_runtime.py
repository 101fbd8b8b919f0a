"""Apply an environment's `airflow-runtime.yaml`: its pools and Variables, converging.

Pools and Variables are Airflow runtime state, not code: nothing in the
official chart creates them, and a pool nobody created makes every task that
names it wait forever. The environment declares them in git
(`environments/<env>/airflow-runtime.yaml`, checked against the DAGs by a
test); this applies them. Running it again changes nothing: a pool's slots or
description, a Variable's declared value, are set only when they differ.

A Variable declared without a value (one a DAG writes, or one set from the
cluster's registration) is left as it is. Connections are declared by
reference (where their credentials come from: a Secret, Workload Identity),
so there is nothing to apply; they are listed for the log.

Usage: python -m ops.apply_runtime environments/<env>/airflow-runtime.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml


def read_runtime(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise SystemExit(f"cannot read {path}: {error}") from error
    unknown = set(document) - {"pools", "variables", "connections"}
    if unknown:
        raise SystemExit(f"{path}: unknown section(s) {', '.join(sorted(unknown))}")
    for name, spec in (document.get("pools") or {}).items():
        if not isinstance(spec, dict) or not isinstance(spec.get("slots"), int) or spec["slots"] < 1:
            raise SystemExit(f"{path}: pool {name!r} needs slots, a positive integer")
    return document


def apply(document: dict[str, Any]) -> list[str]:
    """Converge the metadata DB on the document; one line per object saying what changed."""
    from airflow.models import Pool, Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    report = []
    with create_session() as session:
        for name, spec in sorted((document.get("pools") or {}).items()):
            slots, description = int(spec["slots"]), str(spec.get("description", ""))
            pool = session.scalar(select(Pool).where(Pool.pool == name))
            if pool is None:
                session.add(Pool(pool=name, slots=slots, description=description, include_deferred=False))
                report.append(f"pool {name}: created ({slots} slots)")
            elif (pool.slots, pool.description or "") != (slots, description):
                pool.slots, pool.description = slots, description
                report.append(f"pool {name}: updated ({slots} slots)")
            else:
                report.append(f"pool {name}: unchanged")
        for name, spec in sorted((document.get("variables") or {}).items()):
            if "value" not in (spec or {}):
                report.append(f"variable {name}: not managed here")
                continue
            value, description = str(spec["value"]), str(spec.get("description", ""))
            variable = session.scalar(select(Variable).where(Variable.key == name))
            if variable is None:
                session.add(Variable(key=name, val=value, description=description))
                report.append(f"variable {name}: created")
            elif variable.val != value:
                variable.val = value
                report.append(f"variable {name}: updated")
            else:
                report.append(f"variable {name}: unchanged")
    for name, spec in sorted((document.get("connections") or {}).items()):
        report.append(f"connection {name}: by reference ({(spec or {}).get('from', 'unspecified')})")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runtime", type=Path, help="environments/<env>/airflow-runtime.yaml")
    args = parser.parse_args(argv)
    for line in apply(read_runtime(args.runtime)):
        print(line)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
