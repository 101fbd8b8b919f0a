"""A real Superset for the tests, prepared by `bi-assets deploy` as every environment is; gunicorn serves it.

Built once per session (about 40 s); the analytics tables it reads are built
by dbt-repo's own project over its fixture events, so every number a test
compares comes from the same models production runs.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

BI_REPO = Path(__file__).resolve().parents[1]
DBT_REPO = BI_REPO.parent / "dbt-repo"
BIN = Path(sys.executable).parent

AIRFLOW_PYTHON = BI_REPO.parent / "airflow-repo" / ".venv" / "bin" / "python"
# What dbt_transform's refresh_bi_cache runs, run here by Airflow's own code (pipeline_runtime.bi_cache).
REFRESH_CACHE = """
import json, sys
from pipeline_runtime import bi_cache
url, login, password, tables = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
print(json.dumps(bi_cache.invalidate(url, login, password, tables)))
"""
REFRESHER = "airflow-cache-refresher"

BUILD_WAREHOUSE = """
import sys
from pathlib import Path
sys.path.insert(0, "python_tests")
import duckdb
from conftest import BUILD, RAW_DDL, dbt_runner, fixture_rows, insert_raw
db, workdir = Path(sys.argv[1]), Path(sys.argv[2])
with duckdb.connect(str(db)) as con:
    con.execute(RAW_DDL)
insert_raw(db, fixture_rows())
result = dbt_runner(db, workdir)(*BUILD)
sys.exit(result.returncode)
"""


@dataclass(frozen=True)
class Superset:
    url: str
    env: dict[str, str]
    password: str
    warehouse: Path  # the file dbt built (Superset reads its snapshot, beside it)
    deployed: str  # what the first `bi-assets deploy` printed

    def call(self, path: str, body: Any = None, token: str | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.load(response)

    def token(self) -> str:
        login = {"username": "admin", "password": self.password, "provider": "db", "refresh": False}
        return str(self.call("/api/v1/security/login", login)["access_token"])

    def refresh_cache(self, tables: list[str]) -> subprocess.CompletedProcess[str]:
        """Drop the cached results of `tables` as Airflow does after a build: its code, its user's role."""
        password = self.env["BI_CACHE_REFRESHER_PASSWORD"]  # the user `bi-assets deploy` made
        return subprocess.run(
            [str(AIRFLOW_PYTHON), "-c", REFRESH_CACHE, self.url, REFRESHER, password, ",".join(tables)],
            env={**os.environ, "PYTHONPATH": str(BI_REPO.parent / "airflow-repo" / "dags")},
            capture_output=True,
            text=True,
        )

    def assets(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "bi-assets"), *args], env=self.env | env, capture_output=True, text=True
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The analytics tables, built by dbt-repo's project (its own venv) over its fixture events."""
    workdir = tmp_path_factory.mktemp("warehouse")
    db = workdir / "warehouse.duckdb"
    built = subprocess.run(
        [str(DBT_REPO / ".venv" / "bin" / "python"), "-c", BUILD_WAREHOUSE, str(db), str(workdir)],
        cwd=DBT_REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    publish_snapshot(db, workdir / SNAPSHOT)
    return db


SNAPSHOT = "warehouse-readers.duckdb"


def publish_snapshot(build: Path, snapshot: Path) -> None:
    """What dbt_transform's publish_warehouse_snapshot runs: dbt-repo's own command."""
    env = {
        **os.environ,
        "DBT_TARGET": "duckdb",
        "DBT_DUCKDB_PATH": str(build),
        "WAREHOUSE_SNAPSHOT_PATH": str(snapshot),
    }
    done = subprocess.run(
        [str(DBT_REPO / ".venv" / "bin" / "warehouse-snapshot")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.fixture(scope="session")
def superset(tmp_path_factory: pytest.TempPathFactory, warehouse: Path) -> Iterator[Superset]:
    home = tmp_path_factory.mktemp("superset")
    password = secrets.token_urlsafe(12)
    env = {
        **os.environ,
        "SUPERSET_SECRET_KEY": secrets.token_hex(32),
        "SUPERSET_METADATA_URL": f"sqlite:///{home}/superset.db",
        "SUPERSET_CONFIG_PATH": str(BI_REPO / "src" / "bi" / "superset_config.py"),
        "DBT_TARGET": "duckdb",
        "DBT_DUCKDB_PATH": str(warehouse),
        "WAREHOUSE_SNAPSHOT_PATH": str(warehouse.with_name(SNAPSHOT)),
        # Chart results cached as in every environment: the machine's Redis, this session's own keys.
        "SUPERSET_CACHE_REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "SUPERSET_CACHE_KEY_PREFIX": f"bi-tests-{secrets.token_hex(4)}_",
    }
    # What the chart's post-deploy job runs: migrations, the admin, the assets, Airflow's refresher.
    env |= {"BI_ADMIN_PASSWORD": password, "BI_CACHE_REFRESHER_PASSWORD": secrets.token_urlsafe(12)}
    done = subprocess.run([str(BIN / "bi-assets"), "deploy"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "user admin: created (Admin)" in done.stdout, done.stdout
    port = free_port()
    log = (home / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "-w", "1", "-b", f"127.0.0.1:{port}", "--timeout", "120",
         "superset.app:create_app()"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Superset did not start: {(home / 'gunicorn.log').read_text()[-3000:]}")
            time.sleep(1)
        yield Superset(url, env, password, warehouse, done.stdout)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
