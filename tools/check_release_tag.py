"""Refuse a release tag whose version is not the subproject's: `check_release_tag.py dbt/v1.4.0`.

A tag `<component>/vX.Y.Z` releases `<component>-repo` at version X.Y.Z, so
that subproject's pyproject.toml must say X.Y.Z and its CHANGELOG.md must
have a `## [X.Y.Z]` entry. A release candidate `<component>/vX.Y.Z-rc.N` is a
build of the version being prepared: the same two must already say X.Y.Z.
The release workflow runs this before it builds anything.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

TAG = re.compile(r"^(?P<component>scripts|dbt|airflow)/v(?P<version>\d+\.\d+\.\d+)(?P<rc>-rc\.\d+)?$")


def check(root: Path, tag: str) -> list[str]:
    """The reasons the tag cannot be released; empty when it can."""
    match = TAG.match(tag)
    if not match:
        return [f"{tag!r} is not <scripts|dbt|airflow>/vX.Y.Z or .../vX.Y.Z-rc.N"]
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


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) not in (1, 2):
        print("usage: check_release_tag.py <component>/vX.Y.Z[-rc.N] [repository root]", file=sys.stderr)
        return 2
    root = Path(args[1]) if len(args) == 2 else Path(__file__).resolve().parents[1]
    problems = check(root, args[0])
    for problem in problems:
        print(f"refused: {problem}", file=sys.stderr)
    if not problems:
        print(f"{args[0]}: version and changelog match")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
