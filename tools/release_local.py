"""`release-local`: what the release workflows do after a merge, here, against a real registry.

GitHub Actions (.github/workflows/sandbox.yaml) builds each changed
subproject's image, pushes it to Artifact Registry, records the pushed
digest with `promote record-build` and promotes it to sandbox with
`promote promote --to sandbox`, each as a commit on main. This runs the
same steps on this machine:

1. the images, built by tools/images.py (the same Dockerfiles);
2. Debian's `docker-registry` (the CNCF distribution registry) on 127.0.0.1,
   its storage in --workdir, so pushed images outlive the run;
3. `podman push` of each image as `<version>-main.<N>`; the digest recorded is
   the one the registry answers for that tag (checked against podman's); the
   Airflow image is built from the pushed dbt image by digest, as in CI;
4. a scratch clone of this repository's HEAD in --workdir (never the working
   tree's environments/), where `tools/promote.py record-build` and
   `promote --to sandbox --commit` write the release, as the workflow does.

It prints the release.yaml diff and, with --json, the digests and the clone.
`release_tag()` is the tag workflow (release.yaml) on the same clone: a
release candidate is pushed and promoted to staging, its final version is
recorded as the very same digest and promoted to prod (tests/test_gitops_walk.py).

    python tools/release_local.py --workdir .release-local [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import images

ROOT = images.ROOT
GIT = shutil.which("git") or "/usr/bin/git"
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def registry(storage: Path, port: int | None = None) -> Iterator[str]:
    """A real OCI registry (Debian's docker-registry) on 127.0.0.1; yields host:port."""
    executable = shutil.which("docker-registry")
    if executable is None:
        raise images.ImageError("docker-registry is not installed: `make system-packages` installs it")
    storage.mkdir(parents=True, exist_ok=True)
    address = f"127.0.0.1:{port or free_port()}"
    config = storage.parent / f"registry-{address.replace(':', '-')}.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage:\n  filesystem: {{rootdirectory: {storage}}}\n  delete: {{enabled: true}}\n"
        f"http: {{addr: '{address}'}}\n"
    )
    log = (storage.parent / "registry.log").open("ab")
    process = subprocess.Popen([executable, "serve", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{address}/v2/", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise images.ImageError(
                        f"docker-registry did not start on {address} (see {log.name})"
                    ) from None
                time.sleep(0.2)
        yield address
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def registry_digest(address: str, name: str, reference: str) -> str:
    """The digest the registry itself answers for name:reference (what a cluster would pull)."""
    request = urllib.request.Request(
        f"http://{address}/v2/{name}/manifests/{reference}", method="HEAD", headers={"Accept": MANIFEST_TYPES}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (an http:// URL built here)
        return str(response.headers["Docker-Content-Digest"])


def git(cwd: Path, *args: str) -> str:
    return subprocess.run([GIT, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def scratch_clone(workdir: Path) -> Path:
    """A clone of HEAD with a committer of its own: promotions commit there, never here."""
    clone = workdir / "repository"
    if clone.exists():
        shutil.rmtree(clone)
    subprocess.run([GIT, "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    git(clone, "config", "user.name", "release bot (local)")
    git(clone, "config", "user.email", "release-bot@localhost")
    return clone


def promote(clone: Path, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, str(clone / "tools" / "promote.py"), "--root", str(clone), *args],
        cwd=clone,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise images.ImageError(f"promote {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")


def run_number(clone: Path) -> int:
    """The next `-main.N`: one more than the builds the clone's history already records."""
    builds = clone / "environments" / "builds.yaml"
    if not builds.exists():
        return 1
    import yaml

    return len((yaml.safe_load(builds.read_text()) or {}).get("builds") or []) + 1


def push_and_record(
    clone: Path, address: str, component: str, version: str, source_commit: str, image: str | None = None
) -> dict[str, str]:
    """Push one image as `version`, pin what the registry answers, record the build in the clone."""
    podman_digest = images.push(address, component, tag=version, image=image)
    digest = registry_digest(address, component, version)
    if digest != podman_digest:
        raise images.ImageError(f"{component}: podman pushed {podman_digest}, the registry serves {digest}")
    promote(
        clone,
        "record-build",
        "--component",
        component,
        "--version",
        version,
        "--digest",
        digest,
        "--source-commit",
        source_commit,
        "--commit",
    )
    return {"version": version, "digest": digest, "ref": f"{address}/{component}@{digest}"}


def pinned(clone: Path, environment: str) -> dict[str, dict[str, str]]:
    import yaml

    path = clone / "environments" / environment / "release.yaml"
    return dict(yaml.safe_load(path.read_text())["components"])


def build_airflow_from(address: str, dbt_digest: str) -> str:
    """The Airflow image, its dbt project copied from the pushed dbt image by digest, as the workflows do."""
    built = images.build(
        "airflow",
        tag=f"{images.REPOSITORY}/airflow:release",
        dbt_image=f"{address}/dbt@{dbt_digest}",
        insecure_registry=True,
    )
    return built.ref


def release(workdir: Path, address: str) -> dict[str, object]:
    """After a merge to main (sandbox.yaml): push each image, record it, promote it to sandbox."""
    clone = scratch_clone(workdir)
    number = run_number(clone)
    head = git(clone, "rev-parse", "HEAD").strip()
    pushed: dict[str, dict[str, str]] = {}
    for component in images.COMPONENTS:
        version = f"{images.version(component)}-main.{number}"
        image = build_airflow_from(address, pushed["dbt"]["digest"]) if component == "airflow" else None
        pushed[component] = push_and_record(clone, address, component, version, head, image)
        promote(
            clone, "promote", "--component", component, "--version", version, "--to", "sandbox", "--commit"
        )
    diff = git(clone, "diff", head, "HEAD", "--", "environments/sandbox/release.yaml")
    return {"registry": address, "clone": str(clone), "source_commit": head, "images": pushed, "diff": diff}


def release_tag(clone: Path, address: str, tag: str, source_commit: str) -> dict[str, str]:
    """A release tag on `source_commit` (release.yaml): an rc goes to staging, a final to prod, unrebuilt.

    `<component>/vX.Y.Z-rc.N`: the tag is checked against the subproject's
    version and changelog, the image is pushed once, recorded and promoted
    to staging. `<component>/vX.Y.Z`: the tagged commit must carry a release
    candidate of that version; its very build is recorded as the final
    version (no rebuild, no push) and promoted to prod.
    """
    git(clone, "tag", tag, source_commit)
    checked = subprocess.run(
        [
            sys.executable,
            str(clone / "tools" / "check_release_tag.py"),
            tag,
            str(clone),
            "--reachable-from",
            "HEAD",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if checked.returncode != 0:
        raise images.ImageError(f"{tag}: {checked.stderr.strip()}")
    component, _, version = tag.partition("/v")
    if "-rc." in version:
        image = None
        if component == "airflow":  # its dbt project comes from the dbt image staging runs
            image = build_airflow_from(address, pinned(clone, "staging")["dbt"]["digest"])
        result = push_and_record(clone, address, component, version, source_commit, image)
        environment = "staging"
    else:
        candidates = git(clone, "tag", "--points-at", source_commit).split()
        if not any(t.startswith(f"{component}/v{version}-rc.") for t in candidates):
            raise images.ImageError(f"{tag} is not on the commit of a {version} release candidate")
        promote(
            clone,
            "finalize",
            "--component",
            component,
            "--version",
            version,
            "--source-commit",
            source_commit,
            "--commit",
        )
        environment = "prod"
    promote(clone, "promote", "--component", component, "--version", version, "--to", environment, "--commit")
    entry = pinned(clone, environment)[component]
    if "-rc." not in version:
        result = {
            "version": version,
            "digest": entry["digest"],
            "ref": f"{address}/{component}@{entry['digest']}",
        }
    return {**result, "environment": environment}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=ROOT / ".release-local")
    parser.add_argument("--port", type=int, help="the registry's port (default: a free one)")
    parser.add_argument("--skip-build", action="store_true", help="push the images already built")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if not args.skip_build:
            images.build_all(images.COMPONENTS)
        with registry(workdir / "registry", args.port) as address:
            result = release(workdir, address)
    except (images.ImageError, subprocess.CalledProcessError) as error:
        print(f"release-local: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for component, pushed in result["images"].items():  # type: ignore[attr-defined]
            print(f"{component:<8} {pushed['version']:<16} {pushed['digest']}")
        print(f"\nsandbox's release, promoted in {result['clone']}:\n{result['diff']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
