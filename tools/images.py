"""`images`: build the platform's images here, with podman, from the committed Dockerfiles.

GitHub Actions and Cloud Build build the same Dockerfiles on the public base
images (python slim, uv, the official apache/airflow). Machines that cannot
pull those (this project's CI machines reach only PyPI and Debian) build
stand-ins once and pass them as the Dockerfiles' base-image arguments:

- python: a Debian 12 root file system with Python 3.11 made by mmdebstrap;
- uv: the uv binary of this repository's hashed bootstrap lock, alone in an image;
- airflow: tools/images/airflow-base/Dockerfile, the same Airflow installed
  from airflow-repo's lock on the python stand-in.

Then the images build in dependency order (airflow bakes in the dbt
image's parsed project; bi is Superset with the dashboards as code) with
podman's layer cache, so a run without changes takes seconds. Each image is
tagged `localhost/platform/<component>:<version>` (the version from its
pyproject.toml, also its org.opencontainers.image.version label, which the
release builders set too).

    python tools/images.py build [--only dbt] [--json]
    python tools/images.py push --registry 127.0.0.1:5000 [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTAINERS_CONF = ROOT / "tools" / "podman" / "containers.conf"
# What releases pin and the GitOps walk promotes, each an image.
COMPONENTS = ("scripts", "dbt", "airflow", "bi")
IMAGES = COMPONENTS
REPOSITORY = "localhost/platform"
# The stand-ins' names say which public image each replaces.
PYTHON_BASE = "localhost/platform-base/python:3.11-slim-bookworm"
UV_VERSION = "0.13.8"
UV_BASE = f"localhost/platform-base/uv:{UV_VERSION}"
AIRFLOW_VERSION = "3.3.2"
AIRFLOW_BASE = f"localhost/platform-base/airflow:{AIRFLOW_VERSION}-python3.11"
# What the python slim image has that a minimal Debian lacks and our Dockerfiles use.
DEBIAN_PACKAGES = ("python3", "python3-venv", "ca-certificates", "passwd")
# The machine's CA bundle: builds behind a TLS-inspecting proxy reach PyPI only with it.
CA_DIR = Path("/etc/ssl/certs")
CA_BUNDLE = CA_DIR / "ca-certificates.crt"


class ImageError(RuntimeError):
    """A build step failed; the message says which and why."""


@dataclass(frozen=True)
class Built:
    component: str
    version: str
    ref: str
    image_id: str
    size_mb: float
    seconds: float


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, capture: bool = False) -> str:
    """Run podman with this repository's configuration (runc, no default ulimits)."""
    executable = shutil.which("podman")
    if executable is None:
        raise ImageError("podman is not installed: `make system-packages` installs it")
    result = subprocess.run(
        [executable, *args],
        env=podman_env(),
        check=False,
        text=True,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
    )
    if result.returncode != 0:
        detail = (result.stderr or "").strip()[-2000:] if capture else "(output above)"
        raise ImageError(f"podman {' '.join(args[:2])} failed ({result.returncode}): {detail}")
    return result.stdout or ""


def exists(ref: str) -> bool:
    try:
        podman("image", "exists", ref, capture=True)
    except ImageError:
        return False
    return True


def version(component: str) -> str:
    pyproject = tomllib.loads((ROOT / f"{component}-repo" / "pyproject.toml").read_text())
    return str(pyproject["project"]["version"])


def ref(component: str) -> str:
    return f"{REPOSITORY}/{component}:{version(component)}"


def network_args() -> list[str]:
    """Builds use the host's network and, where it has one, its CA bundle (never copied into a layer)."""
    args = ["--network", "host"]
    if CA_BUNDLE.exists():
        args += ["--volume", f"{CA_DIR}:{CA_DIR}:ro", "--build-arg", f"SSL_CERT_FILE={CA_BUNDLE}"]
    return args


def ensure_python_base() -> None:
    if exists(PYTHON_BASE):
        return
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        raise ImageError("mmdebstrap is not installed: `make system-packages` installs it")
    print(f"==> {PYTHON_BASE}: Debian 12 with Python 3.11 (mmdebstrap)", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        tar = Path(scratch) / "base.tar"
        subprocess.run(
            [
                mmdebstrap,
                "--quiet",
                "--variant=minbase",
                f"--include={','.join(DEBIAN_PACKAGES)}",
                # What the slim image also leaves out: documentation, manuals, translations, apt's lists.
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "--dpkgopt=path-exclude=/usr/share/locale/*",
                "--customize-hook=rm -rf $1/var/lib/apt/lists/* $1/var/cache/apt/*",
                "bookworm",
                str(tar),
            ],
            check=True,
        )
        podman("import", "--quiet", "--change", 'CMD ["python3"]', str(tar), PYTHON_BASE, capture=True)


def ensure_uv_base() -> None:
    if exists(UV_BASE):
        return
    uv = ROOT / ".venv" / "bin" / "uv"
    found = subprocess.run([str(uv), "--version"], capture_output=True, text=True, check=False).stdout
    if f"uv {UV_VERSION}" not in found:
        raise ImageError(f"{uv} is not uv {UV_VERSION} (found {found.strip()!r}): run `make setup`")
    print(f"==> {UV_BASE}: the bootstrap lock's uv binary", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        tar = Path(scratch) / "uv.tar"
        with tarfile.open(tar, "w") as archive:
            archive.add(uv, arcname="uv")
        podman("import", "--quiet", str(tar), UV_BASE, capture=True)


def base_args() -> list[str]:
    return ["--build-arg", f"PYTHON_IMAGE={PYTHON_BASE}", "--build-arg", f"UV_IMAGE={UV_BASE}"]


def ensure_airflow_base() -> None:
    print(f"==> {AIRFLOW_BASE}: Airflow {AIRFLOW_VERSION} from airflow-repo's lock", flush=True)
    podman(
        "build",
        "--layers",
        *network_args(),
        *base_args(),
        "--file",
        str(ROOT / "tools" / "images" / "airflow-base" / "Dockerfile"),
        "--tag",
        AIRFLOW_BASE,
        str(ROOT / "airflow-repo"),
    )


def inspect(image: str) -> tuple[str, float]:
    found = json.loads(podman("image", "inspect", image, capture=True))[0]
    return str(found["Id"]), round(int(found["Size"]) / 1e6, 1)


def build(
    component: str,
    *,
    tag: str | None = None,
    context: Path | None = None,
    dbt_image: str | None = None,
    insecure_registry: bool = False,
) -> Built:
    """Build one image from its subproject's Dockerfile.

    `context` builds another checkout of the subproject (a change under
    review); `dbt_image` is what the Airflow image copies its dbt project from
    (by default the dbt image built here; the release builds it from the
    pushed dbt digest, as the workflow does).
    """
    tag = tag or ref(component)
    # Labelled by the builder, as the release workflow and Cloud Build do (their version may be an rc).
    args = ["--label", f"org.opencontainers.image.version={version(component)}", *base_args()]
    if component == "airflow":
        args += [
            "--build-arg",
            f"AIRFLOW_IMAGE={AIRFLOW_BASE}",
            "--build-arg",
            f"DBT_IMAGE={dbt_image or ref('dbt')}",
        ]
    if insecure_registry:
        args.append("--tls-verify=false")  # a registry on 127.0.0.1 speaks plain HTTP
    print(f"==> {tag}", flush=True)
    started = time.monotonic()
    podman(
        "build", "--layers", *network_args(), *args, "--tag", tag, str(context or ROOT / f"{component}-repo")
    )
    seconds = round(time.monotonic() - started, 1)
    image_id, size = inspect(tag)
    return Built(component, version(component), tag, image_id, size, seconds)


def build_all(only: Sequence[str]) -> list[Built]:
    ensure_python_base()
    ensure_uv_base()
    wanted = [c for c in IMAGES if c in only]
    if "airflow" in wanted:
        ensure_airflow_base()
        if "dbt" not in wanted and not exists(ref("dbt")):
            wanted.insert(0, "dbt")
    return [build(component) for component in wanted]


def push(registry: str, component: str, tag: str | None = None, image: str | None = None) -> str:
    """Push one built image (`image`, default the component's); returns the registry's manifest digest."""
    with tempfile.TemporaryDirectory() as scratch:
        digestfile = Path(scratch) / "digest"
        target = f"docker://{registry}/{component}:{tag or version(component)}"
        podman(
            "push",
            "--quiet",
            "--tls-verify=false",
            "--digestfile",
            str(digestfile),
            image or ref(component),
            target,
            capture=True,
        )
        return digestfile.read_text().strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="build the stand-in bases (once) and the images")
    build_cmd.add_argument("--only", default=",".join(IMAGES), help="comma-separated components")
    build_cmd.add_argument("--json", action="store_true", help="print what was built as JSON")
    push_cmd = commands.add_parser("push", help="push the built images; print their digests")
    push_cmd.add_argument("--registry", required=True, help="host:port of a registry (plain HTTP)")
    push_cmd.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            only = [c.strip() for c in args.only.split(",") if c.strip()]
            unknown = sorted(set(only) - set(IMAGES))
            if unknown:
                parser.error(f"unknown component(s) {unknown}; choose from {IMAGES}")
            built = build_all(only)
            if args.json:
                print(json.dumps([asdict(b) for b in built], indent=2))
            else:
                print(f"\n{'image':<36} {'size':>9} {'build':>8}")
                for b in built:
                    print(f"{b.ref:<36} {b.size_mb:>6.0f} MB {b.seconds:>7.1f}s")
        else:
            digests = {c: push(args.registry, c) for c in COMPONENTS}
            print(
                json.dumps(digests, indent=2)
                if args.json
                else "\n".join(f"{c} {d}" for c, d in digests.items())
            )
    except (ImageError, subprocess.CalledProcessError) as error:
        print(f"images: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
