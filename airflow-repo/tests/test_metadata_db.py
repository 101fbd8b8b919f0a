"""Airflow's metadata schema on PostgreSQL, as production runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

AIRFLOW = str(Path(sys.executable).parent / "airflow")


def _airflow(args: list[str], conn: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": conn,
    }
    return subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=600)


def test_migrate_and_serialize_dags_on_postgres(postgres_database: str, tmp_path: Path) -> None:
    conn = postgres_database.replace("postgresql://", "postgresql+psycopg2://", 1)
    migrated = _airflow(["db", "migrate"], conn, tmp_path)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    assert _airflow(["db", "check"], conn, tmp_path).returncode == 0
    reserialized = _airflow(["dags", "reserialize"], conn, tmp_path)
    assert reserialized.returncode == 0, reserialized.stderr[-3000:]
    listed = _airflow(["dags", "list", "-o", "json"], conn, tmp_path)
    assert listed.returncode == 0, listed.stderr[-3000:]
    line = next(line for line in listed.stdout.splitlines() if line.startswith("["))
    assert "events_ingest" in {dag["dag_id"] for dag in json.loads(line)}
