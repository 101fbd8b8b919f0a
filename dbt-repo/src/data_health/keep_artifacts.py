"""`dbt-keep-artifacts [dbt] <dbt args>`: run dbt, then keep its results in DBT_ARTIFACTS_URL.

In clusters every dbt task is a throwaway pod (Cosmos' Kubernetes mode): its
run_results.json dies with it, and with it the only record of which models
errored and which tests failed. Cosmos runs this in place of `dbt` there, so
the pod uploads its own results before it exits; `data-health` reads them.
dbt's exit code is returned unchanged. A failed upload is logged, not raised:
monitoring must never fail a build that succeeded (the missing run then shows
as an old `platform_dbt_last_run_timestamp_seconds`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from data_health.artifacts import upload

log = logging.getLogger("dbt-keep-artifacts")


def target_dir(args: list[str]) -> Path:
    """Where this dbt invocation writes: --target-path, DBT_TARGET_PATH, else <project dir>/target."""

    def flag(name: str) -> str | None:
        for i, arg in enumerate(args):
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
        return None

    project = Path(flag("--project-dir") or os.environ.get("DBT_PROJECT_DIR") or ".")
    target = flag("--target-path") or os.environ.get("DBT_TARGET_PATH")
    return Path(target) if target and Path(target).is_absolute() else project / (target or "target")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["dbt"]:
        args = args[1:]  # Cosmos passes the dbt command whole: `dbt-keep-artifacts dbt build ...`
    # The dbt beside this interpreter (same venv or image), else the one on PATH.
    beside = Path(sys.executable).parent / "dbt"
    dbt = str(beside) if beside.is_file() else shutil.which("dbt") or "dbt"
    returncode = subprocess.run([dbt, *args], check=False).returncode
    url = os.environ.get("DBT_ARTIFACTS_URL")
    if url:
        started = dt.datetime.now(dt.UTC)
        folder = f"{started:%Y-%m-%d}/{started:%H%M%S%f}-{socket.gethostname()}"
        try:
            copied = upload(target_dir(args), url, folder)
            log.info("kept %d dbt result file(s) in %s/%s", copied, url.rstrip("/"), folder)
        except Exception as error:  # noqa: BLE001 - see the module docstring
            log.warning("could not keep dbt results in %s: %s", url, error)
    return returncode


if __name__ == "__main__":
    sys.exit(main())
