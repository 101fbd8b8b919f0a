"""What CI and the images run is pinned to content, not to names that can move (issue 20, item 16).

A tag (`actions/checkout@v5`, `uv==0.13.8` without a hash) names whatever its
owner, or whoever took over the account, publishes under it next; in a job
holding `id-token: write` that code can mint cloud credentials. So: actions
by commit SHA (the tag kept as a comment for people and Dependabot), every
lock with the sha256 of each file it allows and installed with
--require-hashes, and no tool fetched by a download nothing verifies.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yaml"))
LOCKS = sorted([*ROOT.glob("requirements*.lock"), *ROOT.glob("*-repo/requirements*.lock")])
DOCKERFILES = sorted(ROOT.glob("*-repo/Dockerfile"))
PINNED_ACTION = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


pytestmark = pytest.mark.platform  # configuration checked by its tools, no pipeline run


def steps(workflow: Path) -> list[dict]:
    document = yaml.safe_load(workflow.read_text())
    return [step for job in (document.get("jobs") or {}).values() for step in job.get("steps", [])]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_sha_with_its_version_named(workflow: Path) -> None:
    used = [step["uses"] for step in steps(workflow) if "uses" in step]
    unpinned = [u for u in used if not u.startswith("./") and not PINNED_ACTION.match(u)]
    assert not unpinned, f"{workflow.name}: pin by the 40-character commit SHA: {unpinned}"
    for line in workflow.read_text().splitlines():
        if re.search(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40}", line):
            assert re.search(r"# v\d+(\.\d+)*\s*$", line), (
                f"{workflow.name}: name the version: {line.strip()}"
            )


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_no_workflow_runs_a_download_nothing_verifies(workflow: Path) -> None:
    for step in steps(workflow):
        script = step.get("run", "")
        assert not re.search(r"(curl|wget)[^\n|]*\|\s*(tar|sh|bash|python)", script), (
            f"{workflow.name}: a tool piped from a download: install it from a hashed lock, or check it"
        )


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_locked_requirement_carries_its_hashes(lock: Path) -> None:
    text = lock.read_text()
    requirements = re.findall(r"^([A-Za-z0-9][\w.\[\],-]*==\S+)(.*)$", text, flags=re.M)
    assert requirements
    bare = [name for name, rest in requirements if not rest.strip().startswith("\\")]
    assert not bare, f"{lock.name}: without --hash (run `make lock`): {bare[:5]}"
    assert "--generate-hashes" in text.splitlines()[1]  # what `make lock` ran, so a re-lock keeps them


def test_environments_install_only_what_the_hashes_allow() -> None:
    makefile = (ROOT / "Makefile").read_text()
    syncs = re.findall(r"pip sync[^\n]*", makefile)
    assert syncs and all("--require-hashes" in s for s in syncs), syncs
    installs = [line for line in makefile.splitlines() if "pip install" in line and "-e ./" not in line]
    assert installs and all("--require-hashes" in line or line.rstrip().endswith("\\") for line in installs)
    assert "--require-hashes --no-deps -r requirements-bootstrap.lock" in makefile


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_images_install_their_lock_with_require_hashes(dockerfile: Path) -> None:
    runs = [
        line for line in dockerfile.read_text().splitlines() if "requirements.lock" in line and "RUN" in line
    ]
    assert runs and all("--require-hashes" in line for line in runs), runs


def test_dependabot_moves_the_pins_and_matches_its_schema() -> None:
    import subprocess
    import sys

    config = ROOT / ".github" / "dependabot.yml"
    checked = subprocess.run(
        [Path(sys.executable).parent / "check-jsonschema", "--builtin-schema", "vendor.dependabot", config],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    ecosystems = {u["package-ecosystem"] for u in yaml.safe_load(config.read_text())["updates"]}
    assert {"github-actions", "docker"} <= ecosystems
