"""`python -m ops.smoke_check`: after a deploy, what is missing is named, and any gap fails (issue 24).

The passing run, against a whole stack in containers with the pinned dbt image,
is the root suite's (tests/test_gitops_walk.py); here each way it must fail.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

AIRFLOW_REPO = Path(__file__).resolve().parents[1]
ENVIRONMENTS = AIRFLOW_REPO.parent / "environments"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def smoke(env: dict[str, str], runtime: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.smoke_check", str(runtime), "--api-url", f"http://127.0.0.1:{closed_port()}",
         "--wait", "0", *extra],
        cwd=AIRFLOW_REPO, env=env, capture_output=True, text=True,
    )  # fmt: skip


def lines(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """What each check said, by its subject: 'pool extract' -> 'FAIL ...' or 'ok ...'."""
    found = {}
    for line in done.stdout.splitlines():
        verdict, _, rest = line.partition(" ")
        subject = " ".join(rest.strip().split(":")[0].split()[:2])
        found[subject] = f"{verdict} {rest.strip()}"
    return found


@pytest.fixture
def fresh_env(untouched_metadata_db: dict[str, str]) -> dict[str, str]:
    """Its own migrated metadata DB: these runs must not see the pools another test applied."""
    env = dict(untouched_metadata_db)
    env.pop("PLATFORM_ALERT_EMAIL", None)
    return env


def test_an_environment_that_was_never_bootstrapped_fails_naming_each_gap(fresh_env: dict[str, str]) -> None:
    runtime = ENVIRONMENTS / "prod" / "airflow-runtime.yaml"
    done = smoke(fresh_env, runtime)
    assert done.returncode == 1
    said = lines(done)
    assert said["api-server"].startswith("FAIL") and "did not answer its health check" in said["api-server"]
    assert said["pool extract"].startswith("FAIL") and "wait forever" in said["pool extract"]
    assert said["variable cloud_build_location"].startswith("FAIL")
    assert said["connection google_cloud_default"].startswith("FAIL")
    assert "expected from the bootstrap" in said["connection google_cloud_default"]
    # Alerts by e-mail are off here, so the SMTP connection is not needed.
    assert (
        said["connection smtp_default"].startswith("ok") and "not needed" in said["connection smtp_default"]
    )
    assert "failed: " in done.stderr and "pool warehouse: missing" in done.stderr


def test_after_the_bootstrap_only_what_a_secret_must_bring_is_missing(fresh_env: dict[str, str]) -> None:
    runtime = ENVIRONMENTS / "prod" / "airflow-runtime.yaml"
    applied = subprocess.run(
        [sys.executable, "-m", "ops.apply_runtime", str(runtime)],
        cwd=AIRFLOW_REPO, env=fresh_env, capture_output=True, text=True,
    )  # fmt: skip
    assert applied.returncode == 0, applied.stderr[-2000:]
    assert (
        "connection google_cloud_default: created (google_cloud_platform, no credentials)" in applied.stdout
    )
    # With alert e-mail on, the SMTP connection is needed, and the check says where it must come from.
    alerting = {**fresh_env, "PLATFORM_ALERT_EMAIL": "data-team@example.org"}
    said = lines(smoke(alerting, runtime))
    for subject in (
        "pool extract",
        "pool warehouse",
        "variable cloud_build_location",
        "connection google_cloud_default",
    ):
        assert said[subject].startswith("ok"), said[subject]
    assert said["connection smtp_default"].startswith("FAIL")
    assert (
        "the Kubernetes Secret airflow-connections, key AIRFLOW_CONN_SMTP_DEFAULT"
        in said["connection smtp_default"]
    )
    # Once the Secret's variable is there (as the chart gives it to every Airflow pod), it resolves.
    smtp = "smtp://" + "mailer" + "@smtp.example.org:587"
    said = lines(smoke({**alerting, "AIRFLOW_CONN_SMTP_DEFAULT": smtp}, runtime))
    assert said["connection smtp_default"].startswith("ok"), said["connection smtp_default"]
    # A pool changed by hand is found.
    subprocess.run(
        [Path(sys.executable).with_name("airflow"), "pools", "set", "extract", "1", "changed by hand"],
        env=fresh_env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    said = lines(smoke(fresh_env, runtime))
    assert said["pool extract"].startswith("FAIL") and "1 slots (declared 4)" in said["pool extract"]


def test_the_dbt_checks_run_dbt_debug_and_parse_the_way_a_task_runs_dbt(
    fresh_env: dict[str, str], tmp_path: Path
) -> None:
    """--dbt through the tasks' runner (locally the dbt venv; in containers the pinned image)."""
    dbt_repo = AIRFLOW_REPO.parent / "dbt-repo"
    env = {
        **fresh_env,
        "PLATFORM_RUNNER": "local",
        "PLATFORM_DBT_CMD": str(dbt_repo / ".venv" / "bin" / "dbt"),
        "DBT_PROJECT_DIR": str(dbt_repo),
        "DBT_PROFILES_DIR": str(dbt_repo),
        "DBT_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
    }
    said = lines(smoke(env, ENVIRONMENTS / "sandbox" / "airflow-runtime.yaml", "--dbt"))
    assert said["dbt debug"].startswith("ok") and said["dbt parse"].startswith("ok"), said
    # A project dbt cannot parse fails the check, and says so.
    broken = {**env, "DBT_PROJECT_DIR": str(tmp_path)}
    (tmp_path / "dbt_project.yml").write_text("name: [not, a, name]\n")
    said = lines(smoke(broken, ENVIRONMENTS / "sandbox" / "airflow-runtime.yaml", "--dbt"))
    assert said["dbt parse"].startswith("FAIL"), said
