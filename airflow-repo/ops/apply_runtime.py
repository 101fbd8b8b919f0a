"""Apply an environment's `airflow-runtime.yaml`: its pools and Variables, converging.

Pools and Variables are Airflow runtime state, not code: nothing in the
official chart creates them, and a pool nobody created makes every task that
names it wait forever. The environment declares them in git
(`environments/<env>/airflow-runtime.yaml`, checked against the DAGs by a
test); this applies them. Running it again changes nothing: a pool's slots or
description, a Variable's declared value, are set only when they differ.

A Variable declared without a value (one a DAG writes, or one set from the
cluster's registration) is left as it is. Connections are declared by
reference: one that authenticates as the pod itself (Workload Identity) has no
credentials, so it is created here with its type and nothing else; the others
come from a Secret or the secrets backend, where Airflow finds them, so there
is nothing to apply (`ops.smoke_check` verifies they resolve).

Usage: python -m ops.apply_runtime environments/<env>/airflow-runtime.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ops.runtime_file import read_runtime, where


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
            report.append(_connection(session, name, spec))
    return report


def _connection(session: Any, name: str, spec: dict[str, Any]) -> str:
    """A Workload Identity connection converges on its type and no credentials; others are by reference."""
    from airflow.models import Connection
    from sqlalchemy import select

    if spec["from"] != "workload-identity":
        return f"connection {name}: by reference ({where(name, spec)})"
    connection = session.scalar(select(Connection).where(Connection.conn_id == name))
    if connection is None:
        session.add(Connection(conn_id=name, conn_type=spec["type"], description=spec.get("description")))
        return f"connection {name}: created ({spec['type']}, no credentials)"
    # A key or login added by hand would quietly replace the pod's identity: put it back.
    held = (connection.host, connection.login, connection.get_password(), connection.extra)
    if connection.conn_type != spec["type"] or any(held):
        connection.conn_type = spec["type"]
        connection.host = connection.login = connection.password = connection.extra = None
        return f"connection {name}: updated ({spec['type']}, no credentials)"
    return f"connection {name}: unchanged"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runtime", type=Path, help="environments/<env>/airflow-runtime.yaml")
    args = parser.parse_args(argv)
    for line in apply(read_runtime(args.runtime)):
        print(line)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
