"""`make up` / `make down`: four Airflow components come up healthy with our DAGs and stop together."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[1]
STACK = ROOT / "tools" / "stack.sh"
POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, token: str | None = None) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _postgres_answers() -> bool:
    try:
        with psycopg.connect(POSTGRES, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_up_serves_the_ui_with_healthy_components_and_down_stops_them_all(tmp_path: Path) -> None:
    if not _postgres_answers():
        message = f"no PostgreSQL at {POSTGRES} for the metadata DB"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port = _free_port()
    database = f"airflow_stack_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "STACK_DIR": str(tmp_path / "stack"),
        "STACK_PORT": str(port),
        "STACK_POSTGRES_URL": POSTGRES,
        "STACK_DB_NAME": database,
        "AIRFLOW__CORE__PARALLELISM": "2",
    }
    up = subprocess.run([STACK, "up"], env=env, capture_output=True, text=True, timeout=300)
    pgid = int((tmp_path / "stack" / "stack.pgid").read_text())
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "metadata DB: postgresql" in up.stdout
        base = f"http://127.0.0.1:{port}"
        # Every component reports a heartbeat through the api-server's health endpoint.
        deadline = time.monotonic() + 120
        while True:
            health = _get(f"{base}/api/v2/monitor/health")
            states = {name: part.get("status") for name, part in health.items()}
            if set(states.values()) == {"healthy"} or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert states == {
            "metadatabase": "healthy",
            "scheduler": "healthy",
            "triggerer": "healthy",
            "dag_processor": "healthy",
        }
        # The viewer logs in with the generated password and sees our DAGs once they are parsed.
        passwords = json.loads((tmp_path / "stack" / "passwords.json").read_text())
        login = urllib.request.Request(
            f"{base}/auth/token",
            data=json.dumps({"username": "viewer", "password": passwords["viewer"]}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(login, timeout=10) as response:
            token = json.loads(response.read())["access_token"]
        dag_ids: set[str] = set()
        while time.monotonic() < deadline + 60 and "dbt_transform" not in dag_ids:
            dag_ids = {d["dag_id"] for d in _get(f"{base}/api/v2/dags?limit=100", token)["dags"]}
            time.sleep(2)
        assert {"events_ingest", "dbt_transform", "events_stream", "platform_maintenance"} <= dag_ids
        # A second `up` sees the running stack instead of starting another.
        again = subprocess.run([STACK, "up"], env=env, capture_output=True, text=True, timeout=60)
        assert "already running" in again.stdout
    finally:
        down = subprocess.run([STACK, "down"], env=env, capture_output=True, text=True, timeout=120)
        with psycopg.connect(POSTGRES, autocommit=True) as con:
            con.execute(f'drop database if exists "{database}" with (force)')
    assert down.returncode == 0 and "stopped process group" in down.stdout
    assert not _group_alive(pgid), "a component survived `make down`"
