"""`make up ENV=<env>`: what the stack needs to run an environment from what it pins.

`make release-local` has pushed the images to a registry whose storage is in
`.release-local/registry` and promoted their digests in a scratch clone
(`.release-local/repository`). Before the stack starts, this:

1. checks that the clone's `environments/<env>/release.yaml` pins a digest for
   every component (a null one cannot run: say so, and how to fix it);
2. renders each component's ConfigMap from the platform chart for that
   environment, with the local layer (`helm_config/platform/local-values.yaml`
   and this stack's folders), and its Secret from this process's environment,
   into `--env-dir` (tools/container_env.py);
3. starts the registry on its storage for a moment and copies the dbt manifest
   out of the pinned Airflow image (the scheduler renders `dbt_transform` from
   it, as the Airflow pods do), then stops it: the stack runs its own
   registry on the same storage for the containers' pulls.

    python tools/stack_pins.py --env sandbox --release-dir .release-local \\
        --state-dir .stack/data --env-dir .stack/configmaps --registry-port 5055
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import container_env
import images
import release_local

ROOT = images.ROOT


def pins(clone: Path, env: str) -> dict[str, dict[str, str]]:
    release = clone / "environments" / env / "release.yaml"
    if not release.is_file():
        raise SystemExit(f"{release}: missing; `make release-local` makes the scratch clone")
    components = release_local.pinned(clone, env)
    unbuilt = [name for name, entry in components.items() if not entry.get("digest")]
    if unbuilt:
        raise SystemExit(
            f"{env} pins no image for {', '.join(unbuilt)} in {release}: "
            + (
                "`make release-local` promotes every image to sandbox"
                if env == "sandbox"
                else f"promote a build to {env} there first (tools/promote.py)"
            )
        )
    return components


def manifest_from(image: str, destination: Path) -> None:
    """Copy the dbt manifest the Airflow image carries (pulled from the registry if missing)."""
    created = images.podman("create", "--tls-verify=false", image, capture=True).strip()
    try:
        images.podman("cp", f"{created}:/opt/dbt/target/manifest.json", str(destination), capture=True)
    finally:
        images.podman("rm", "--force", "--ignore", created, capture=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", required=True)
    parser.add_argument("--release-dir", type=Path, default=ROOT / ".release-local")
    parser.add_argument("--state-dir", type=Path, required=True, help="the folders mounted in the containers")
    parser.add_argument("--env-dir", type=Path, required=True, help="PLATFORM_CONTAINER_ENV_DIR")
    parser.add_argument("--registry-port", type=int, required=True)
    parser.add_argument(
        "--manifest", type=Path, required=True, help="where to put the Airflow image's manifest"
    )
    args = parser.parse_args(argv)
    clone = args.release_dir.resolve() / "repository"
    pinned = pins(clone, args.env)
    state = args.state_dir.resolve()
    container_env.render_local(
        args.env,
        args.env_dir,
        environments=clone / "environments",
        duckdb_path=state / "warehouse.duckdb",
        dashboard_dir=os.environ["DASHBOARD_DIR"],
        artifacts_url=f"file://{state / 'dbt-artifacts'}",
    )
    try:
        with release_local.registry(args.release_dir.resolve() / "registry", args.registry_port) as address:
            airflow = pinned["airflow"]
            manifest_from(f"{address}/{airflow['image']}@{airflow['digest']}", args.manifest)
    except images.ImageError as error:
        raise SystemExit(f"the pinned Airflow image's manifest: {error}") from error
    for name, entry in pinned.items():
        print(f"    {name:<8} {entry['version']:<16} {entry['digest']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
