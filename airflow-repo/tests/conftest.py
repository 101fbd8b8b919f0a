"""Shared fixtures: an isolated Airflow home and the one PostgreSQL fixture.

PostgreSQL comes from testcontainers when a Docker engine answers, otherwise
from the server this machine runs on 127.0.0.1:5432. In CI, finding neither is
a failure, never a skip: a skipped metadata-DB test would hide a broken deploy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

AIRFLOW_REPO = Path(__file__).resolve().parents[1]
DAGS_FOLDER = AIRFLOW_REPO / "dags"


def pytest_configure(config: pytest.Config) -> None:
    # Before any airflow import: a throwaway home, our DAGs only, no network.
    home = Path(os.environ.get("PYTEST_AIRFLOW_HOME", "/tmp")) / f"airflow-test-{os.getpid()}"
    home.mkdir(parents=True, exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] = "False"
    os.environ["AIRFLOW__COSMOS__CACHE_DIR"] = str(home / "cosmos")
    # The dbt project and the manifest `make setup` parses, as an image would bake them in.
    dbt_repo = AIRFLOW_REPO.parent / "dbt-repo"
    os.environ.setdefault("DBT_PROJECT_DIR", str(dbt_repo))
    os.environ.setdefault("PLATFORM_DBT_CMD", str(dbt_repo / ".venv" / "bin" / "dbt"))
    os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home}/airflow.db")
    # As tools/local-env.sh and the chart do: platform_maintenance's DB clean is given the URL.
    os.environ.setdefault("PLATFORM_METADATA_DB_URL", os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means "no engine"
        return False


def _server_answers(dsn: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A libpq URL of a PostgreSQL server with rights to create databases."""
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:15-alpine", driver=None) as container:
            yield container.get_connection_url()
        return
    local = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    if _server_answers(local):
        yield local
        return
    message = f"no PostgreSQL: no Docker engine answered and nothing listens at {local}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def postgres_database(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the server, dropped afterwards."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as con:
        con.execute(f'create database "{name}"')
    base, _, _ = postgres_server.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as con:
            con.execute(f'drop database if exists "{name}" with (force)')


FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A migrated metadata DB (SQLite) with the FAB auth manager, shared by the ops/ commands' tests."""
    home = tmp_path_factory.mktemp("fab-home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__AUTH_MANAGER": FAB,
    }
    migrated = subprocess.run(
        [Path(sys.executable).with_name("airflow"), "db", "migrate"], env=env, capture_output=True, text=True
    )
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    # Kept before any test writes to it: a test that needs a DB nothing was applied to copies this
    # (milliseconds) instead of migrating its own (about 15 s each).
    shutil.copyfile(home / "airflow.db", home / MIGRATED)
    return env


MIGRATED = "migrated-untouched.db"


@pytest.fixture
def untouched_metadata_db(airflow_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """airflow_env over its own copy of the freshly migrated DB: no pool, Variable or connection
    another test applied is visible."""
    db = tmp_path / "airflow.db"
    shutil.copyfile(Path(airflow_env["AIRFLOW_HOME"]) / MIGRATED, db)
    return {**airflow_env, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}"}
