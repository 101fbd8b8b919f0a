"""Refuse a release tag whose version is not the subproject's: `check_release_tag.py dbt/v1.4.0`.

A tag `<component>/vX.Y.Z` releases `<component>-repo` at version X.Y.Z, so
that subproject's pyproject.toml must say X.Y.Z and its CHANGELOG.md must
have a `## [X.Y.Z]` entry. A release candidate `<component>/vX.Y.Z-rc.N` is a
build of the version being prepared: the same two must already say X.Y.Z.
The release workflow runs this before it builds anything, with
`--reachable-from origin/main`: the tagged commit must be on main, so a tag
pushed on any other commit (a branch nobody reviewed) never builds and
pushes an image with the release identity.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

TAG = re.compile(r"^(?P<component>scripts|dbt|airflow|bi)/v(?P<version>\d+\.\d+\.\d+)(?P<rc>-rc\.\d+)?$")


def check(root: Path, tag: str) -> list[str]:
    """The reasons the tag cannot be released; empty when it can."""
    match = TAG.match(tag)
    if not match:
        return [f"{tag!r} is not <scripts|dbt|airflow|bi>/vX.Y.Z or .../vX.Y.Z-rc.N"]
    project = root / f"{match['component']}-repo"
    version = match["version"]
    problems = []
    declared = tomllib.loads((project / "pyproject.toml").read_text())["project"]["version"]
    if declared != version:
        problems.append(f"{project.name}/pyproject.toml says version {declared}, the tag says {version}")
    changelog = (project / "CHANGELOG.md").read_text()
    if not re.search(rf"^## \[{re.escape(version)}\]", changelog, flags=re.MULTILINE):
        problems.append(f"{project.name}/CHANGELOG.md has no '## [{version}]' entry")
    return problems


def on_branch(root: Path, tag: str, branch: str) -> list[str]:
    """Whether the commit `tag` points at is reachable from `branch` (reviewed history)."""
    reachable = subprocess.run(
        [shutil.which("git") or "/usr/bin/git", "merge-base", "--is-ancestor", f"{tag}^{{commit}}", branch],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if reachable.returncode == 0:
        return []
    if reachable.returncode == 1:
        return [f"{tag} is on a commit that is not on {branch}: release only what was merged"]
    return [f"cannot tell whether {tag} is on {branch}: {reachable.stderr.strip()}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tag", help="<component>/vX.Y.Z[-rc.N]")
    parser.add_argument("root", nargs="?", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--reachable-from", metavar="REF", help="refuse unless the tagged commit is on REF")
    args = parser.parse_args(argv)
    problems = check(args.root, args.tag)
    if args.reachable_from and not problems:
        problems = on_branch(args.root, args.tag, args.reachable_from)
    for problem in problems:
        print(f"refused: {problem}", file=sys.stderr)
    if not problems:
        print(f"{args.tag}: version and changelog match")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
