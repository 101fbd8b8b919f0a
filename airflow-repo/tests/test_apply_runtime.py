"""`python -m ops.apply_runtime`: an environment's pools and Variables applied, converging (issue 24)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

AIRFLOW_REPO = Path(__file__).resolve().parents[1]
ENVIRONMENTS = AIRFLOW_REPO.parent / "environments"


def apply(env: dict[str, str], runtime: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.apply_runtime", str(runtime)],
        cwd=AIRFLOW_REPO, env=env, capture_output=True, text=True,
    )  # fmt: skip


def report(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stdout.splitlines() if re.match(r"^(pool|variable|connection) ", line)]


def pools(env: dict[str, str]) -> dict[str, int]:
    script = (
        "from airflow.models import Pool\nfrom airflow.utils.session import create_session\n"
        "with create_session() as s:\n    print({p.pool: p.slots for p in s.query(Pool)})"
    )
    shown = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return eval(shown.stdout.strip().splitlines()[-1])


def test_an_environments_runtime_objects_are_applied_then_converge(airflow_env: dict[str, str]) -> None:
    runtime = ENVIRONMENTS / "prod" / "airflow-runtime.yaml"
    first = apply(airflow_env, runtime)
    assert first.returncode == 0, first.stderr[-2000:]
    lines = report(first)
    assert "pool extract: created (4 slots)" in lines and "pool warehouse: created (1 slots)" in lines
    assert "variable cloud_build_location: created" in lines
    assert "variable dbt_image: not managed here" in lines  # the refresh DAG writes it
    # Workload Identity: created with its type and no credentials; a Secret's: only referred to.
    assert "connection google_cloud_default: created (google_cloud_platform, no credentials)" in lines
    assert any(
        line.startswith("connection smtp_default: by reference (the Kubernetes Secret") for line in lines
    )
    assert {"extract": 4, "warehouse": 1}.items() <= pools(airflow_env).items()
    # Again: nothing changes. Another environment's file: the slots follow it.
    again = report(apply(airflow_env, runtime))
    assert all(
        line.endswith("unchanged") or "not managed" in line or "by reference" in line for line in again
    )
    # Something added by hand to the no-credentials connection would replace the pod's identity: undone.
    subprocess.run(
        [Path(sys.executable).with_name("airflow"), "connections", "delete", "google_cloud_default"],
        env=airflow_env, capture_output=True, check=True,
    )  # fmt: skip
    subprocess.run(
        [Path(sys.executable).with_name("airflow"), "connections", "add", "google_cloud_default",
         "--conn-type", "google_cloud_platform", "--conn-host", "added-by-hand.example.org"],
        env=airflow_env, capture_output=True, check=True,
    )  # fmt: skip
    undone = report(apply(airflow_env, runtime))
    assert "connection google_cloud_default: updated (google_cloud_platform, no credentials)" in undone
    sandbox = report(apply(airflow_env, ENVIRONMENTS / "sandbox" / "airflow-runtime.yaml"))
    assert "pool extract: updated (2 slots)" in sandbox and pools(airflow_env)["extract"] == 2


def test_a_bad_runtime_file_is_refused_with_the_reason(airflow_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "runtime.yaml"
    bad.write_text("pools:\n  extract: {slots: 0}\n")
    done = apply(airflow_env, bad)
    assert done.returncode != 0 and "pool 'extract' needs slots" in done.stderr
