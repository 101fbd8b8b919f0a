"""The tutorial "Add your own source" runs exactly as written (issue 22), so it cannot rot.

Its shell blocks run in order, in one bash, in a copy of the repository (the
tutorial adds models to the dbt project), against a scratch database on the
PostgreSQL server the tests use; the environments are the checkout's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

pytestmark = pytest.mark.e2e  # runs the pipeline: extract, load and dbt on the tutorial's sources

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorials" / "add-your-own-source.md"
POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def shell_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", markdown, flags=re.MULTILINE | re.DOTALL)


@pytest.fixture
def database() -> Iterator[str]:
    name = f"tutorial_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES, autocommit=True) as con:
        con.execute(f'create database "{name}"')
    try:
        yield f"{POSTGRES.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as con:
            con.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The repository's files (tracked or new, not ignored) with the checkout's environments linked in."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    copy = tmp_path / "repo"
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    for project in ("scripts-repo", "dbt-repo"):
        (copy / project / ".venv").symlink_to(ROOT / project / ".venv")
    return copy


def test_the_tutorial_runs_as_written(checkout: Path, database: str) -> None:
    blocks = shell_blocks(TUTORIAL.read_text())
    assert len(blocks) >= 8, "the tutorial's steps are its ```sh blocks"
    script = "set -euo pipefail\n" + "\n".join(blocks)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES_FILE", "DBT_", "BUCKET_URL"))}
    run = subprocess.run(
        ["bash", "-c", script],
        cwd=checkout,
        env={**env, "REWARDS_DATABASE_URL": database},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    out = run.stdout
    # Step 0: the sources, of their kinds.
    assert "events file" in out and "orders rest" in out and "rewards postgres" in out
    assert "campaign_budgets sheets" in out
    # Step 2: the order with negative miles is quarantined with its reason, not lost.
    assert '"negative_miles_spent": 1' in out
    # Step 4: the catalogue as it is now, and each app user's orders.
    assert "[(1, 'Coffee voucher', 500), (2, 'Lounge pass', 7500)]" in out
    assert "('u_0001', 2, 1200)" in out and "('u_0002', 1, 0)" in out
    # Step 5: the raw table is the newest sheet; the dbt snapshot keeps every version (SCD2).
    assert "[('spring', '65000'), ('summer', '80000'), ('winter', '30000')]" in out
    assert (
        "[('autumn', '20000', False), ('spring', '50000', False), ('spring', '65000', True),"
        " ('summer', '80000', True), ('winter', '30000', True)]"
    ) in out
