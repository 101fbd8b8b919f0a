"""A release tag must match its subproject's version and changelog, checked on copies of the real files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "tools" / "check_release_tag.py"


pytestmark = pytest.mark.platform  # configuration checked by its tools, no pipeline run


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for component in ("scripts", "dbt", "airflow", "bi"):
        (tmp_path / f"{component}-repo").mkdir()
        for name in ("pyproject.toml", "CHANGELOG.md"):
            shutil.copy(ROOT / f"{component}-repo" / name, tmp_path / f"{component}-repo" / name)
    return tmp_path


def run(tag: str, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CHECK), tag, str(root)], capture_output=True, text=True)


def test_the_current_versions_are_releasable_as_tagged(root: Path) -> None:
    import tomllib

    for component in ("scripts", "dbt", "airflow", "bi"):
        version = tomllib.loads((root / f"{component}-repo" / "pyproject.toml").read_text())["project"][
            "version"
        ]
        assert run(f"{component}/v{version}", root).returncode == 0
        assert run(f"{component}/v{version}-rc.2", root).returncode == 0


def test_a_tag_ahead_of_the_version_or_changelog_is_refused(root: Path) -> None:
    ahead = run("dbt/v9.0.0", root)
    assert ahead.returncode == 1
    assert "pyproject.toml says version" in ahead.stderr and "no '## [9.0.0]' entry" in ahead.stderr
    pyproject = root / "dbt-repo" / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace('version = "', 'version = "9.0.0" #', 1))
    only_changelog = run("dbt/v9.0.0", root)
    assert only_changelog.returncode == 1 and "pyproject" not in only_changelog.stderr
    assert "CHANGELOG.md has no" in only_changelog.stderr


@pytest.mark.parametrize("tag", ["dbt/1.0.0", "web/v1.0.0", "dbt/v1.0", "dbt/v1.0.0-beta"])
def test_malformed_tags_are_refused(root: Path, tag: str) -> None:
    result = run(tag, root)
    assert result.returncode == 1 and "is not" in result.stderr


def test_a_tag_on_a_commit_off_main_is_refused(root: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout

    git("init", "-q", "-b", "main")
    git("-c", "user.email=ci@example.com", "-c", "user.name=ci", "add", ".")
    git("-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "main")
    version = __import__("tomllib").loads((root / "dbt-repo" / "pyproject.toml").read_text())["project"][
        "version"
    ]
    git("tag", f"dbt/v{version}-rc.1")
    on_main = subprocess.run(
        [sys.executable, str(CHECK), f"dbt/v{version}-rc.1", str(root), "--reachable-from", "main"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert on_main.returncode == 0, on_main.stderr
    git("checkout", "-qb", "unreviewed")
    (root / "dbt-repo" / "extra.txt").write_text("not merged")
    git("add", ".")
    git("-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "unreviewed")
    git("tag", f"dbt/v{version}-rc.2")
    off_main = subprocess.run(
        [sys.executable, str(CHECK), f"dbt/v{version}-rc.2", str(root), "--reachable-from", "main"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert off_main.returncode == 1 and "not on main" in off_main.stderr
