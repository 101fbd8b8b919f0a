"""After a deploy, is the environment usable? Each check says what is missing, and any failure fails.

Argo CD runs this as the platform chart's PostSync hook (a failure fails the
sync), `make up ENV=<env>` runs it against the local stack in containers, and
it runs against any stack by hand. What it asserts:

- the api-server answers its health endpoint, with a healthy metadata DB and a
  scheduler (and DAG processor) whose heartbeat is recent;
- every pool, Variable and connection `airflow-runtime.yaml` declares is
  there: pools with their slots, Variables with their declared value, each
  connection resolvable the way a task resolves it (its environment, the
  secrets backend, the metadata DB) and of its declared type;
- with `--dbt`, the dbt image the environment pins passes `dbt debug` and
  `dbt parse`, run by the same runner the tasks use (a container of the
  pinned digest in container mode). In a cluster the hook's second container,
  the pinned dbt image itself, runs those two instead.

Usage: python -m ops.smoke_check --api-url URL RUNTIME [--dbt] [--wait SECONDS]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ops.runtime_file import read_runtime, where

# The components the api-server reports on that must be healthy for tasks to run at all.
REQUIRED_COMPONENTS = ("metadatabase", "scheduler", "dag_processor")


def check_api(api_url: str, timeout: float = 10.0) -> list[tuple[bool, str]]:
    url = api_url.rstrip("/") + "/api/v2/monitor/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (the operator's URL)
            health: dict[str, Any] = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as error:
        return [(False, f"api-server: {url} did not answer its health check ({error})")]
    found = [(True, f"api-server: {url} answered")]
    for component in REQUIRED_COMPONENTS:
        status = (health.get(component) or {}).get("status")
        if component == "dag_processor" and component not in health:
            continue  # an api-server too old to report it
        heartbeat = (health.get(component) or {}).get(f"latest_{component}_heartbeat")
        detail = f" (heartbeat {heartbeat})" if heartbeat else ""
        found.append((status == "healthy", f"{component}: {status or 'not reported'}{detail}"))
    return found


def check_runtime(document: dict[str, Any]) -> list[tuple[bool, str]]:
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    found = []
    with create_session() as session:
        pools = {pool.pool: pool.slots for pool in session.scalars(select(Pool))}
        for name, spec in sorted((document.get("pools") or {}).items()):
            slots = pools.get(name)
            if slots is None:
                found.append((False, f"pool {name}: missing; every task naming it would wait forever"))
            else:
                found.append(
                    (slots == spec["slots"], f"pool {name}: {slots} slots (declared {spec['slots']})")
                )
        variables = {v.key: v.val for v in session.scalars(select(Variable))}
    for name, spec in sorted((document.get("variables") or {}).items()):
        if "value" in (spec or {}):
            value, declared = variables.get(name), str(spec["value"])
            state = "as declared" if value == declared else f"{value!r}, declared {declared!r}"
            state = "missing" if value is None else state
            found.append((value == declared, f"variable {name}: {state}"))
        else:
            found.append(
                (True, f"variable {name}: {'set' if name in variables else 'unset'} (not managed here)")
            )
    for name, spec in sorted((document.get("connections") or {}).items()):
        found.append(_connection(Connection, name, spec))
    return found


def _connection(connection_class: Any, name: str, spec: dict[str, Any]) -> tuple[bool, str]:
    required = True
    if spec.get("required_if"):
        from pipeline_runtime.settings import settings

        required = bool(getattr(settings(), spec["required_if"]))
    try:
        connection = connection_class.get_connection_from_secrets(name)
    except Exception:  # noqa: BLE001 (Airflow raises its own not-found, backends their own errors)
        state = "missing" if required else f"absent, not needed ({spec['required_if']} unset)"
        return (not required, f"connection {name}: {state}; expected from {where(name, spec)}")
    if connection.conn_type != spec["type"]:
        return (False, f"connection {name}: type {connection.conn_type!r}, declared {spec['type']!r}")
    return (True, f"connection {name}: resolves ({spec['type']})")


def check_dbt() -> list[tuple[bool, str]]:
    """`dbt debug` and `dbt parse` in the environment's dbt build, the way a task runs dbt."""
    from pipeline_runtime import dbt_checks, runner
    from pipeline_runtime.release import load_release
    from pipeline_runtime.settings import settings

    image = load_release().image_ref("dbt") if settings().runs_images else "the local dbt project"
    found = []
    # `debug --connection`: the warehouse reached with the pod's settings; the image has no git for
    # debug's dependency check, and the project itself is `parse`'s to check.
    for args in (("debug", "--connection"), ("parse",)):
        try:
            dbt_checks.check_pinned(*args)
        except runner.CommandFailedError as error:
            found.append(
                (False, f"dbt {args[0]}: failed in {image} (exit {error.exit_code}; its log is above)")
            )
        else:
            found.append((True, f"dbt {args[0]}: passes in {image}"))
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runtime", type=Path, help="environments/<env>/airflow-runtime.yaml")
    parser.add_argument(
        "--api-url", required=True, help="the api-server, e.g. http://airflow-api-server:8080"
    )
    parser.add_argument(
        "--dbt", action="store_true", help="also run dbt debug and dbt parse in the pinned image"
    )
    parser.add_argument(
        "--wait", type=float, default=120.0,
        help="seconds to wait for the api-server and heartbeats after a (re)start (default 120)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    _import_dags_folder()
    document = read_runtime(args.runtime)
    # Just after a deploy the scheduler may not have beaten yet: wait that out, not a real outage.
    deadline = time.monotonic() + args.wait
    api = check_api(args.api_url)
    while not all(ok for ok, _ in api) and time.monotonic() < deadline:
        time.sleep(3)
        api = check_api(args.api_url)
    results = api + check_runtime(document)
    if args.dbt:
        results += check_dbt()
    for ok, line in results:
        print(f"{'ok  ' if ok else 'FAIL'} {line}")
    failed = [line for ok, line in results if not ok]
    if failed:
        print(f"smoke check: {len(failed)} of {len(results)} failed: " + "; ".join(failed), file=sys.stderr)
        sys.exit(1)
    print(f"smoke check: all {len(results)} passed")


def _import_dags_folder() -> None:
    """The DAGs' own modules (pipeline_runtime): the DAGs folder shipped beside ops/, in the repository
    as in the image (/opt/airflow/dags), so the check reads settings exactly as tasks do."""
    folder = str(Path(__file__).resolve().parents[1] / "dags")
    if folder not in sys.path:
        sys.path.insert(0, folder)


if __name__ == "__main__":
    main()
