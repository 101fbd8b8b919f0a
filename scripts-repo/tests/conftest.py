from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from extract_load.demo.events_api import serve
from extract_load.demo.generator import GeneratorSpec, write_parquet

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_EXPORT = Path(
    os.environ.get("HEYMAX_SAMPLE", REPO_ROOT.parent / "shared" / "datasets" / "heymax_event_stream.csv")
)


@pytest.fixture(scope="session")
def small_stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stream") / "events.parquet"
    write_parquet(GeneratorSpec(dt.date(2025, 3, 3), days=14, users=300, seed=7, with_gender=True), path)
    return path


@contextmanager
def running_api(source: Path, token: str | None = None) -> Iterator[str]:
    server = serve(source, "127.0.0.1", 0, token)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def api() -> Callable[..., object]:
    return running_api


@pytest.fixture(scope="session")
def sample_export() -> Path:
    if not SAMPLE_EXPORT.is_file():
        message = f"the public sample export is missing at {SAMPLE_EXPORT}"
        # Only an explicit HEYMAX_SAMPLE=none may skip in CI (e.g. a fork without the file).
        if os.environ.get("CI") and os.environ.get("HEYMAX_SAMPLE") != "none":
            pytest.fail(message)
        pytest.skip(message)
    return SAMPLE_EXPORT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    port = _free_port()
    # The emulator, enforcing GCS's generation preconditions (see gcs_emulator.py).
    process = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).parent / "gcs_emulator.py"),
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--in-memory",
            "--default-bucket",
            "landing",
            "--quiet",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("the GCS emulator did not start")
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    try:
        yield os.environ["STORAGE_EMULATOR_HOST"]
    finally:
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous
        process.terminate()
        process.wait(timeout=10)


POSTGRES_SERVER = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def scratch_database() -> Iterator[str]:
    """A fresh database on the PostgreSQL server this machine runs (CI fails, never skips, without it)."""
    import uuid

    import psycopg

    name = f"test_src_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as con:
        con.execute(f'create database "{name}"')
    try:
        yield f"{POSTGRES_SERVER.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as con:
            con.execute(f'drop database if exists "{name}" with (force)')


def team_config(folder: Path, sources: str, contracts: dict[str, str]) -> Path:
    """A team's own sources file with its contracts in `contracts/` beside it; returns the sources file."""
    (folder / "contracts").mkdir(parents=True)
    for name, text in contracts.items():
        (folder / "contracts" / f"{name}.yaml").write_text(text)
    (folder / "sources.yaml").write_text(sources)
    return folder / "sources.yaml"
