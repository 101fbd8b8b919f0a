"""The promotion tool against real git repositories in temporary folders, concurrent pushes included."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROMOTE = ROOT / "tools" / "promote.py"
DIGESTS = {name: "sha256:" + char * 64 for name, char in (("d1", "1"), ("d2", "2"), ("d3", "3"), ("s1", "a"))}


pytestmark = pytest.mark.platform  # configuration checked by its tools, no pipeline run


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def promote(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PROMOTE), "--root", str(repo), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def release(repo: Path, env: str) -> dict:
    return yaml.safe_load((repo / "environments" / env / "release.yaml").read_text())["components"]


def _init(repo: Path) -> None:
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "ci@example.com")
    git(repo, "config", "user.name", "release bot")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with this project's environment files (nothing deployed yet) and three builds of dbt."""
    repo = tmp_path / "repo"
    for env in ("sandbox", "staging", "prod"):
        (repo / "environments" / env).mkdir(parents=True)
        shutil.copy(
            ROOT / "environments" / env / "release.yaml", repo / "environments" / env / "release.yaml"
        )
    _init(repo)
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "initial state")
    for version, digest in (("1.0.0", "d1"), ("1.1.0-rc.1", "d2"), ("1.1.0", "d3")):
        done = promote(
            repo, "record-build", "--component", "dbt", "--version", version, "--digest", DIGESTS[digest]
        )
        assert done.returncode == 0, done.stderr
        git(repo, "add", ".")
        git(repo, "commit", "-qm", f"build dbt {version}")
    return repo


def test_a_promotion_is_one_commit_with_a_printed_diff(repo: Path) -> None:
    done = promote(repo, "promote", "--component", "dbt", "--version", "1.0.0", "--to", "sandbox", "--commit")
    assert done.returncode == 0, done.stderr
    assert f"+    digest: {DIGESTS['d1']}" in done.stdout and "-    digest: null" in done.stdout
    assert release(repo, "sandbox")["dbt"] == {"version": "1.0.0", "image": "dbt", "digest": DIGESTS["d1"]}
    assert git(repo, "log", "-1", "--format=%s").strip().startswith("chore(sandbox): promote dbt to 1.0.0")
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == [
        "environments/sandbox/release.yaml"
    ]
    again = promote(
        repo, "promote", "--component", "dbt", "--version", "1.0.0", "--to", "sandbox", "--commit"
    )
    assert again.returncode == 0 and "no change" in again.stdout


def test_what_was_never_built_is_refused(repo: Path) -> None:
    never = promote(repo, "promote", "--component", "dbt", "--version", "9.9.9", "--to", "sandbox")
    assert never.returncode == 1 and "never built" in never.stderr
    wrong = promote(
        repo,
        "promote",
        "--component",
        "dbt",
        "--version",
        "1.0.0",
        "--to",
        "sandbox",
        "--digest",
        DIGESTS["d2"],
    )
    assert wrong.returncode == 1 and "was built as" in wrong.stderr
    twice = promote(
        repo, "record-build", "--component", "dbt", "--version", "1.0.0", "--digest", DIGESTS["d2"]
    )
    assert twice.returncode == 1 and "built once" in twice.stderr
    assert git(repo, "status", "--porcelain") == ""  # refusals change nothing


def test_prod_takes_only_final_versions_that_ran_in_staging(repo: Path) -> None:
    early = promote(repo, "promote", "--component", "dbt", "--version", "1.1.0", "--to", "prod")
    assert early.returncode == 1 and "never ran in staging" in early.stderr
    rc = promote(repo, "promote", "--component", "dbt", "--version", "1.1.0-rc.1", "--to", "prod")
    assert rc.returncode == 1 and "pre-release" in rc.stderr
    for version in ("1.1.0-rc.1", "1.1.0"):
        staged = promote(
            repo, "promote", "--component", "dbt", "--version", version, "--to", "staging", "--commit"
        )
        assert staged.returncode == 0, staged.stderr
    shipped = promote(repo, "promote", "--component", "dbt", "--version", "1.1.0", "--to", "prod", "--commit")
    assert shipped.returncode == 0, shipped.stderr
    assert release(repo, "prod")["dbt"]["digest"] == DIGESTS["d3"]


def test_going_back_needs_rollback_and_rollback_is_one_command(repo: Path) -> None:
    for version in ("1.0.0", "1.1.0"):
        assert (
            promote(
                repo, "promote", "--component", "dbt", "--version", version, "--to", "staging", "--commit"
            ).returncode
            == 0
        )
    down = promote(repo, "promote", "--component", "dbt", "--version", "1.0.0", "--to", "staging")
    assert down.returncode == 1 and "--rollback" in down.stderr
    # Forward, the replaced build is named: it may run until the new one passes the environment's checks.
    assert release(repo, "staging")["dbt"]["previous_digest"] == DIGESTS["d1"]
    back = promote(repo, "rollback", "--component", "dbt", "--env", "staging", "--commit")
    assert back.returncode == 0, back.stderr
    # Back, nothing newer may run any more: the release names only the build it returns to.
    assert release(repo, "staging")["dbt"] == {"version": "1.0.0", "image": "dbt", "digest": DIGESTS["d1"]}
    assert git(repo, "log", "-1", "--format=%s").startswith("chore(staging): roll back dbt to 1.0.0")


def test_a_pull_request_branch_holds_the_promotion(repo: Path) -> None:
    done = promote(
        repo,
        "promote",
        "--component",
        "dbt",
        "--version",
        "1.0.0",
        "--to",
        "sandbox",
        "--branch",
        "promote/sandbox/dbt-1.0.0",
    )
    assert done.returncode == 0, done.stderr
    assert git(repo, "branch", "--show-current").strip() == "promote/sandbox/dbt-1.0.0"
    assert git(repo, "log", "main..HEAD", "--format=%s").strip().startswith("chore(sandbox): promote dbt")


def test_concurrent_promotions_of_two_components_both_land(repo: Path, tmp_path: Path) -> None:
    done = promote(
        repo, "record-build", "--component", "scripts", "--version", "2.0.0", "--digest", DIGESTS["s1"]
    )
    assert done.returncode == 0
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "build scripts 2.0.0")
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(origin)], check=True)
    clones = []
    for name in ("a", "b"):
        clone = tmp_path / name
        subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
        git(clone, "config", "user.email", f"{name}@example.com")
        git(clone, "config", "user.name", f"workflow {name}")
        clones.append(clone)
    # Both workflows start at the same time from the same main.
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                str(PROMOTE),
                "--root",
                str(clone),
                "promote",
                "--component",
                component,
                "--version",
                version,
                "--to",
                "staging",
                "--push",
                "origin/main",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for clone, (component, version) in zip(clones, (("dbt", "1.0.0"), ("scripts", "2.0.0")), strict=True)
    ]
    results = [(run.wait(timeout=120), run.stderr.read()) for run in runs]
    assert all(code == 0 for code, _ in results), results
    final = tmp_path / "final"
    subprocess.run(["git", "clone", "-q", str(origin), str(final)], check=True)
    staging = release(final, "staging")
    assert staging["dbt"]["digest"] == DIGESTS["d1"] and staging["scripts"]["digest"] == DIGESTS["s1"]
    subjects = git(final, "log", "--format=%s", "-2").splitlines()
    assert sorted(s.split(" to ")[0] for s in subjects) == [
        "chore(staging): promote dbt",
        "chore(staging): promote scripts",
    ]


def test_a_final_tag_ships_the_exact_image_staging_ran(repo: Path) -> None:
    rc_digest = "sha256:" + "4" * 64
    steps = [
        ("record-build", "--component", "dbt", "--version", "1.2.0-rc.1", "--digest", rc_digest, "--commit"),
        ("finalize", "--component", "dbt", "--version", "1.2.0"),  # refused: staging does not run it yet
        ("promote", "--component", "dbt", "--version", "1.2.0-rc.1", "--to", "staging", "--commit"),
        ("finalize", "--component", "dbt", "--version", "1.2.0", "--commit"),
        ("promote", "--component", "dbt", "--version", "1.2.0", "--to", "prod", "--commit"),
    ]
    codes = [promote(repo, *step).returncode for step in steps]
    assert codes == [0, 1, 0, 0, 0]
    assert release(repo, "prod")["dbt"] == {"version": "1.2.0", "image": "dbt", "digest": rc_digest}
    assert git(repo, "log", "--format=%s", "-2").splitlines()[1] == "chore(release): dbt 1.2.0 is 1.2.0-rc.1"


def test_sandbox_builds_from_main_order_before_release_candidates(repo: Path) -> None:
    main_digest = "sha256:" + "5" * 64
    built = promote(
        repo, "record-build", "--component", "dbt", "--version", "1.1.0-main.42", "--digest", main_digest
    )
    assert built.returncode == 0, built.stderr
    git(repo, "commit", "-qam", "build")
    assert (
        promote(
            repo, "promote", "--component", "dbt", "--version", "1.1.0-rc.1", "--to", "sandbox", "--commit"
        ).returncode
        == 0
    )
    older = promote(repo, "promote", "--component", "dbt", "--version", "1.1.0-main.42", "--to", "sandbox")
    assert older.returncode == 1 and "older" in older.stderr
    prod = promote(repo, "promote", "--component", "dbt", "--version", "1.1.0-main.42", "--to", "prod")
    assert prod.returncode == 1 and "pre-release" in prod.stderr


@pytest.mark.parametrize(
    ("component", "values", "pinned"),
    [
        ("airflow", "airflow-image.yaml", lambda digest: {"images": {"airflow": {"digest": digest}}}),
        # The Superset chart names repository:tag; the tag carries the digest, the version a label.
        ("bi", "bi-image.yaml", lambda digest: {"image": {"tag": f"0.2.0@{digest}"}}),
    ],
)
def test_a_promotion_also_pins_the_official_charts_image(
    repo: Path, component: str, values: str, pinned: Any
) -> None:
    digest = "sha256:" + "6" * 64
    assert (
        promote(
            repo, "record-build", "--component", component, "--version", "0.2.0", "--digest", digest
        ).returncode
        == 0
    )
    done = promote(
        repo, "promote", "--component", component, "--version", "0.2.0", "--to", "sandbox", "--commit"
    )
    assert done.returncode == 0, done.stderr
    changed = set(git(repo, "show", "--name-only", "--format=", "HEAD").split())
    assert changed == {"environments/sandbox/release.yaml", f"environments/sandbox/{values}"}
    image = yaml.safe_load((repo / "environments" / "sandbox" / values).read_text())
    assert image == pinned(digest)
    assert release(repo, "sandbox")[component]["digest"] == digest


def test_a_second_rollback_goes_further_back_never_to_the_release_it_fled(repo: Path) -> None:
    for version in ("1.0.0", "1.1.0-rc.1", "1.1.0"):
        done = promote(
            repo, "promote", "--component", "dbt", "--version", version, "--to", "staging", "--commit"
        )
        assert done.returncode == 0, done.stderr
    first = promote(repo, "rollback", "--component", "dbt", "--env", "staging", "--commit")
    assert first.returncode == 0, first.stderr
    assert release(repo, "staging")["dbt"]["version"] == "1.1.0-rc.1"
    second = promote(repo, "rollback", "--component", "dbt", "--env", "staging", "--commit")
    assert second.returncode == 0, second.stderr
    assert release(repo, "staging")["dbt"]["version"] == "1.0.0"  # not 1.1.0 again
    third = promote(repo, "rollback", "--component", "dbt", "--env", "staging")
    assert third.returncode == 1 and "older than 1.0.0" in third.stderr


def test_finalize_takes_the_candidate_built_from_the_tagged_commit(repo: Path) -> None:
    tagged, later = "a" * 40, "b" * 40
    rc1, rc2 = "sha256:" + "7" * 64, "sha256:" + "8" * 64
    for version, digest, commit in (("1.3.0-rc.1", rc1, tagged), ("1.3.0-rc.2", rc2, later)):
        done = promote(repo, "record-build", "--component", "dbt", "--version", version, "--digest", digest,
                       "--source-commit", commit, "--commit")  # fmt: skip
        assert done.returncode == 0, done.stderr
    for version in ("1.3.0-rc.1", "1.3.0-rc.2"):  # staging ran rc.1, then moved on to rc.2
        done = promote(
            repo, "promote", "--component", "dbt", "--version", version, "--to", "staging", "--commit"
        )
        assert done.returncode == 0, done.stderr
    # The final tag is on rc.1's commit: 1.3.0 is rc.1's image, although staging runs rc.2 now.
    final = promote(repo, "finalize", "--component", "dbt", "--version", "1.3.0", "--source-commit", tagged,
                    "--commit")  # fmt: skip
    assert final.returncode == 0, final.stderr
    built = yaml.safe_load((repo / "environments" / "builds.yaml").read_text())["builds"]
    assert {"component": "dbt", "version": "1.3.0", "digest": rc1, "source_commit": tagged} in built
    # A commit no candidate was built from cannot be finalized.
    unknown = promote(
        repo, "finalize", "--component", "dbt", "--version", "1.3.0", "--source-commit", "c" * 40
    )
    assert unknown.returncode == 1 and "no release candidate" in unknown.stderr
