"""`promote`: move one component's built image into an environment, as a reviewed git commit.

What runs in sandbox, staging and prod is `environments/<env>/release.yaml`
and nothing else. This tool is the only writer of those files; workflows call
it and people review what it commits. It refuses what would make git lie:

- a version that was never built (not in `environments/builds.yaml`, which the
  build workflow appends to with `promote record-build`), or a digest that is
  not that build's;
- a downgrade, unless `--rollback` says so;
- prod with a digest that staging never ran (checked in staging's git history).

Every change prints a unified diff and becomes one commit, on the current
branch or a new `--branch` for a pull request; with `--push` it retries on a
concurrent promotion by re-applying itself on the newest main.

    promote record-build --component dbt --version 1.4.0-rc.1 --digest sha256:...
    promote promote --component dbt --version 1.4.0-rc.1 --to staging --commit
    promote finalize --component dbt --version 1.4.0 --commit   # the rc staging runs, no rebuild
    promote promote --component dbt --version 1.4.0 --to prod --branch promote/prod/dbt-1.4.0
    promote promote --component dbt --to prod --version 1.3.2 --rollback --commit
    promote rollback --component dbt --env prod --commit
"""

from __future__ import annotations

import argparse
import difflib
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ENVIRONMENTS = ("sandbox", "staging", "prod")
COMPONENTS = ("scripts", "dbt", "airflow", "bi")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# X.Y.Z, a release candidate X.Y.Z-rc.N, or a sandbox build from main X.Y.Z-main.N (N: the CI run).
VERSION = re.compile(
    r"^(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)(?:-(?P<stage>rc|main)\.(?P<number>\d+))?$"
)
STAGES = {"main": 0, "rc": 1, None: 2}
RELEASE_HEADER = """\
# What runs in {env}: one entry per subproject, its version and image digest.
# Written by the promotion tool in a reviewed commit, never by hand. Only the
# image name and digest live here; the registry (region/project) comes from
# PLATFORM_IMAGE_REGISTRY, so no project id is committed. A null digest means
# the component was never built for this environment and cannot run there.
"""
AIRFLOW_IMAGE_HEADER = """\
# The Airflow image for the official chart, by digest: written by the promotion
# tool together with release.yaml (whose airflow entry it repeats), never by hand.
"""
BI_IMAGE_HEADER = """\
# The bi (Superset) image for the official Superset chart, by digest: written by the
# promotion tool together with release.yaml (whose bi entry it repeats), never by hand.
# The chart names an image repository:tag; a tag of <version>@<digest> pins the digest
# (the version is only a label). Null: never built for this environment, it cannot run.
"""
BUILDS_HEADER = """\
# Every image CI built and pushed, appended by `promote record-build` in the
# release workflow. Promotion refuses a version or digest that is not here.
"""


class PromotionError(RuntimeError):
    """The promotion would make the environment's desired state wrong; nothing was changed."""


def version_key(version: str) -> tuple[int, int, int, int, int]:
    match = VERSION.match(version)
    if not match:
        raise PromotionError(f"{version!r} is not X.Y.Z, X.Y.Z-rc.N or X.Y.Z-main.N")
    # Builds from main come before the release candidates of a version, which come before the release.
    number = int(match["number"]) if match["number"] else 0
    return (int(match["major"]), int(match["minor"]), int(match["patch"]), STAGES[match["stage"]], number)


@dataclass(frozen=True)
class Change:
    path: Path
    before: str
    after: str
    message: str
    # Files derived from the main one in the same commit (the official charts' image values).
    also: tuple[tuple[Path, str, str], ...] = ()

    @property
    def files(self) -> list[tuple[Path, str, str]]:
        return [(self.path, self.before, self.after), *self.also]

    @property
    def empty(self) -> bool:
        return all(before == after for _, before, after in self.files)

    def diff(self, root: Path) -> str:
        return "".join(
            "".join(
                difflib.unified_diff(
                    before.splitlines(keepends=True),
                    after.splitlines(keepends=True),
                    fromfile=f"a/{path.relative_to(root)}",
                    tofile=f"b/{path.relative_to(root)}",
                )
            )
            for path, before, after in self.files
        )


GIT = shutil.which("git") or "/usr/bin/git"


def git(root: Path, *args: str, check: bool = True) -> str:
    result = subprocess.run([GIT, *args], cwd=root, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise PromotionError(f"git {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def release_path(root: Path, env: str) -> Path:
    return root / "environments" / env / "release.yaml"


def read_release(text: str) -> dict[str, Any]:
    document = yaml.safe_load(text) or {}
    components = document.get("components") or {}
    for name, entry in components.items():
        for key in ("digest", "previous_digest"):
            digest = entry.get(key)
            if digest is not None and not DIGEST.match(str(digest)):
                raise PromotionError(f"{name}: {key} {digest!r} is not sha256:<64 hex>")
    return document


def render_release(env: str, document: dict[str, Any]) -> str:
    body = {"environment": env, "components": document["components"]}
    return RELEASE_HEADER.format(env=env) + yaml.safe_dump(body, sort_keys=False, default_flow_style=False)


def render_airflow_image(digest: str | None) -> str:
    """Values for the official Airflow chart naming the image release.yaml pins (written with it)."""
    body = {"images": {"airflow": {"digest": digest}}}
    return AIRFLOW_IMAGE_HEADER + yaml.safe_dump(body, sort_keys=False)


def render_bi_image(version: str | None, digest: str | None) -> str:
    """Values for the official Superset chart naming the image release.yaml pins (written with it)."""
    body = {"image": {"tag": f"{version}@{digest}" if digest else None}}
    return BI_IMAGE_HEADER + yaml.safe_dump(body, sort_keys=False)


def read_builds(root: Path) -> list[dict[str, str]]:
    path = root / "environments" / "builds.yaml"
    if not path.exists():
        return []
    return list((yaml.safe_load(path.read_text()) or {}).get("builds") or [])


def record_build(
    root: Path, component: str, version: str, digest: str, source_commit: str | None = None
) -> Change:
    if component not in COMPONENTS:
        raise PromotionError(f"unknown component {component!r}")
    version_key(version)
    if not DIGEST.match(digest):
        raise PromotionError(f"digest {digest!r} is not sha256:<64 hex>")
    path = root / "environments" / "builds.yaml"
    before = path.read_text() if path.exists() else ""
    builds = read_builds(root)
    for build in builds:
        if build["component"] == component and build["version"] == version:
            if build["digest"] == digest:
                return Change(path, before, before, "")
            raise PromotionError(
                f"{component} {version} was already built as {build['digest']}: a version is built once"
            )
    if source_commit is not None and not re.fullmatch(r"[0-9a-f]{40}", source_commit):
        raise PromotionError(f"source commit {source_commit!r} is not a full git commit id")
    entry = {"component": component, "version": version, "digest": digest}
    if source_commit:
        entry["source_commit"] = source_commit
    builds.append(entry)
    after = BUILDS_HEADER + yaml.safe_dump({"builds": builds}, sort_keys=False)
    return Change(path, before, after, f"chore(release): record {component} {version} build {digest[:19]}")


def _ran_in(root: Path, env: str, component: str, digest: str) -> bool:
    """Whether any committed state of `env` ever ran `component` at `digest`."""
    relative = f"environments/{env}/release.yaml"
    for commit in git(root, "log", "--format=%H", "--", relative).split():
        text = git(root, "show", f"{commit}:{relative}", check=False)
        if not text:
            continue
        entry = (read_release(text).get("components") or {}).get(component) or {}
        if entry.get("digest") == digest:
            return True
    return False


def promote(
    root: Path, component: str, env: str, version: str, digest: str | None = None, rollback: bool = False
) -> Change:
    if env not in ENVIRONMENTS:
        raise PromotionError(f"unknown environment {env!r} (one of {', '.join(ENVIRONMENTS)})")
    if component not in COMPONENTS:
        raise PromotionError(f"unknown component {component!r}")
    build = next(
        (b for b in read_builds(root) if b["component"] == component and b["version"] == version), None
    )
    if build is None:
        raise PromotionError(f"{component} {version} was never built (not in environments/builds.yaml)")
    if digest and digest != build["digest"]:
        raise PromotionError(f"{component} {version} was built as {build['digest']}, not {digest}")
    digest = build["digest"]
    if env == "prod":
        if "-" in version:
            raise PromotionError(f"{component} {version} is a pre-release: prod takes final versions")
        if not _ran_in(root, "staging", component, digest):
            raise PromotionError(
                f"{component} {version} ({digest[:19]}) never ran in staging: promote it there first"
            )

    path = release_path(root, env)
    before = path.read_text()
    document = read_release(before)
    current = document["components"].get(component) or {"image": component}
    if current.get("digest") == digest and current.get("version") == version:
        return Change(path, before, before, "")
    if current.get("digest") and version_key(version) < version_key(str(current["version"])) and not rollback:
        raise PromotionError(
            f"{env} runs {component} {current['version']}; {version} is older: pass --rollback to go back"
        )
    entry: dict[str, Any] = {"version": version, "image": current.get("image", component), "digest": digest}
    # Forward, the build it replaces may run until the new one passes the environment's own checks
    # (dbt_image_refresh); back, nothing newer may run: the rollback takes effect at once.
    if not rollback and current.get("digest") and current.get("digest") != digest:
        entry["previous_digest"] = current["digest"]
    document["components"][component] = entry
    after = render_release(env, document)
    verb = "roll back" if rollback else "promote"
    also = ()
    # The official charts read their image from their own values, written in the same commit.
    chart_images = {
        "airflow": ("airflow-image.yaml", lambda: render_airflow_image(digest)),
        "bi": ("bi-image.yaml", lambda: render_bi_image(version, digest)),
    }
    if component in chart_images:
        name, render = chart_images[component]
        image_values = root / "environments" / env / name
        old = image_values.read_text() if image_values.exists() else ""
        also = ((image_values, old, render()),)
    return Change(path, before, after, f"chore({env}): {verb} {component} to {version} ({digest[:19]})", also)


def finalize(root: Path, component: str, version: str, source_commit: str | None = None) -> Change:
    """Record final `version` as the very image of its release candidate on the tagged commit: no rebuild.

    A final tag marks the commit of a release candidate that passed staging;
    rebuilding it would give a digest staging never ran. The candidate is the
    one built from `source_commit` (the commit the final tag points at), and
    staging must have run exactly it: not whichever candidate staging happens
    to run now, which may come from another commit.
    """
    candidates = [
        b
        for b in read_builds(root)
        if b["component"] == component and b["version"].startswith(f"{version}-rc.")
    ]
    if source_commit is not None:
        candidates = [b for b in candidates if b.get("source_commit") == source_commit]
        if not candidates:
            raise PromotionError(
                f"no release candidate of {component} {version} was built from {source_commit[:12]}: "
                "tag the commit of a candidate that was built"
            )
        candidate = candidates[-1]
        if not _ran_in(root, "staging", component, candidate["digest"]):
            raise PromotionError(
                f"{component} {candidate['version']} (built from {source_commit[:12]}) never ran in staging: "
                "promote it there first"
            )
    else:
        staging = (read_release(release_path(root, "staging").read_text())["components"].get(component)) or {}
        candidate = next((b for b in candidates if b["digest"] == staging.get("digest")), None)
        if candidate is None:
            raise PromotionError(
                f"staging does not run a release candidate of {component} {version} "
                f"(it runs {staging.get('version')}): promote the candidate to staging first"
            )
    change = record_build(root, component, version, candidate["digest"], candidate.get("source_commit"))
    return Change(
        change.path,
        change.before,
        change.after,
        f"chore(release): {component} {version} is {candidate['version']}",
    )


def previous_version(root: Path, component: str, env: str) -> str:
    """The newest version `env` ran for `component` that is older than its current one, from git history.

    Older, not merely different: after a rollback from 1.3.0 to 1.2.0, the
    version 1.2.0 replaced was 1.3.0 itself, and a second rollback must go on
    to 1.1.0, never back to the release it fled.
    """
    relative = f"environments/{env}/release.yaml"
    current = (read_release(release_path(root, env).read_text())["components"].get(component) or {}).get(
        "version"
    )
    for commit in git(root, "log", "--format=%H", "--", relative).split():
        entry = (read_release(git(root, "show", f"{commit}:{relative}"))["components"].get(component)) or {}
        version = entry.get("version")
        if (
            entry.get("digest")
            and version
            and (current is None or version_key(str(version)) < version_key(str(current)))
        ):
            return str(version)
    raise PromotionError(f"{env} has no version of {component} older than {current} to roll back to")


def apply(root: Path, change: Change, commit: bool, branch: str | None) -> str | None:
    """Write the change; commit it (on a new branch if asked). Returns the commit id."""
    if change.empty:
        return None
    for path, _, after in change.files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(after)
    if not (commit or branch):
        return None
    if branch:
        git(root, "checkout", "-b", branch)
    git(root, "add", *(str(path.relative_to(root)) for path, _, _ in change.files))
    git(root, "commit", "-m", change.message)
    return git(root, "rev-parse", "HEAD").strip()


def run_with_push(root: Path, make_change: Any, remote: str, branch: str, attempts: int = 5) -> str | None:
    """Commit and push; when another promotion landed first, start again from the newest branch."""
    for _ in range(attempts):
        git(root, "fetch", remote, branch)
        git(root, "reset", "--hard", f"{remote}/{branch}")
        change = make_change()
        print(change.diff(root) or "no change", end="")
        sha = apply(root, change, commit=True, branch=None)
        if sha is None:
            return None
        pushed = subprocess.run(
            [GIT, "push", remote, f"HEAD:{branch}"], cwd=root, capture_output=True, text=True, check=False
        )
        if pushed.returncode == 0:
            return sha
        print(f"push rejected, retrying on the newest {branch}: {pushed.stderr.strip()}", file=sys.stderr)
    raise PromotionError(f"could not push after {attempts} attempts")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="promote", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    commands = parser.add_subparsers(dest="command", required=True)

    record = commands.add_parser("record-build", help="record an image CI built and pushed")
    promote_cmd = commands.add_parser("promote", help="run a built version in an environment")
    rollback_cmd = commands.add_parser("rollback", help="go back to the version an environment ran before")
    finalize_cmd = commands.add_parser("finalize", help="record a final version as the rc staging runs")
    finalize_cmd.add_argument("--version", required=True)
    for sub in (record, promote_cmd, rollback_cmd, finalize_cmd):
        sub.add_argument("--component", required=True, choices=COMPONENTS)
        sub.add_argument("--commit", action="store_true", help="commit the change on the current branch")
        sub.add_argument("--branch", help="commit the change on this new branch (for a pull request)")
        sub.add_argument(
            "--push", metavar="REMOTE/BRANCH", help="commit on and push to this branch, retrying"
        )
    record.add_argument("--version", required=True)
    record.add_argument("--digest", required=True)
    record.add_argument("--source-commit", help="the git commit the image was built from (full id)")
    finalize_cmd.add_argument(
        "--source-commit", help="the commit the final tag points at: its candidate is the one finalized"
    )
    promote_cmd.add_argument("--version", required=True)
    promote_cmd.add_argument("--to", dest="env", required=True, choices=ENVIRONMENTS)
    promote_cmd.add_argument("--digest", help="refuse unless the build of --version has this digest")
    promote_cmd.add_argument("--rollback", action="store_true", help="allow going to an older version")
    rollback_cmd.add_argument("--env", required=True, choices=ENVIRONMENTS)
    args = parser.parse_args(argv)
    root = args.root.resolve()

    def make_change() -> Change:
        if args.command == "record-build":
            return record_build(root, args.component, args.version, args.digest, args.source_commit)
        if args.command == "finalize":
            return finalize(root, args.component, args.version, args.source_commit)
        if args.command == "rollback":
            version = previous_version(root, args.component, args.env)
            return promote(root, args.component, args.env, version, rollback=True)
        return promote(root, args.component, args.env, args.version, args.digest, args.rollback)

    try:
        if args.push:
            remote, _, branch = args.push.partition("/")
            sha = run_with_push(root, make_change, remote, branch)
        else:
            change = make_change()
            print(change.diff(root) or "no change", end="")
            sha = apply(root, change, args.commit, args.branch)
    except PromotionError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    if sha:
        print(f"\ncommitted {sha}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
