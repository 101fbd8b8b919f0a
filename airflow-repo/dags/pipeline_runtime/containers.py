"""The same Command in a container: the component's image by digest, started with podman.

`PLATFORM_RUNNER=container` sits between `local` (a venv on the worker) and
`kubernetes` (a pod): each command runs in the image the environment's
release file pins, with the arguments and environment the pod would get, so
a machine without a cluster runs exactly what an environment pins.

What the pod gets from its component's ConfigMap and Secret comes from env
files (`PLATFORM_CONTAINER_ENV_DIR/platform-<component>.env` and
`.secret.env`, rendered from the platform chart for that environment);
secret values set on the task reach the container by name (`--env NAME`, the
value read from podman's own environment), so no secret is ever part of a
command line. The bucket and the warehouse are host folders mounted at the
same path (`PLATFORM_CONTAINER_MOUNTS`), so arguments mean the same inside.
Like the pods, containers run as the image's non-root user with no
capability and no privilege escalation, and one never outlives its task.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path

from pipeline_runtime.commands import Command
from pipeline_runtime.kubernetes import component_labels
from pipeline_runtime.release import IMAGE_OF_COMPONENT, Release, load_release
from pipeline_runtime.settings import settings


def podman() -> str:
    program = settings().command("podman", "podman")
    return shutil.which(program) or program


def container_name(command: Command) -> str:
    return f"platform-{command.component}-{secrets.token_hex(6)}"


def env_files(component: str) -> list[Path]:
    """The component's ConfigMap, then its Secret, as env files (those that exist)."""
    folder = settings().container_env_dir
    if folder is None:
        return []
    config = f"platform-{IMAGE_OF_COMPONENT.get(component, component)}"
    return [f for f in (folder / f"{config}.env", folder / f"{config}.secret.env") if f.is_file()]


def config_env(component: str) -> dict[str, str]:
    """The component's ConfigMap file as a mapping (never its Secret: that one stays a file)."""
    found: dict[str, str] = {}
    for env_file in env_files(component):
        if env_file.name.endswith(".secret.env"):
            continue
        for line in env_file.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                found[key.strip()] = value
    return found


def podman_argv(command: Command, name: str, release: Release | None = None) -> list[str]:
    """`podman run` for `command` in its pinned image: what the pod spec says, as flags."""
    config = settings()
    release = release or load_release()
    image_component = IMAGE_OF_COMPONENT.get(command.component, command.component)
    image = command.image or release.image_ref(command.component)
    program, *arguments = command.in_image
    labels = component_labels(image_component, release.component(image_component).version)
    argv = [
        podman(),
        "run",
        "--rm",
        "--name",
        name,
        "--network",
        "host",
        "--pull",
        "missing",
        f"--tls-verify={str(config.container_tls_verify).lower()}",
        *(argument for key, value in labels.items() for argument in ("--label", f"{key}={value}")),
        "--security-opt",
        "no-new-privileges",
        "--cap-drop",
        "ALL",
    ]
    for env_file in env_files(command.component):
        argv += ["--env-file", str(env_file)]
    for key, value in command.env.items():
        # A secret by name only: podman reads its value from its own environment.
        argv += ["--env", key if key in command.secret_env else f"{key}={value}"]
    for folder in config.container_mounts:
        argv += ["--volume", f"{folder}:{folder}"]
    return [*argv, "--entrypoint", program, image, *arguments]


def remove(name: str) -> None:
    """Stop and remove the container if it still runs (a timeout or a kill of its task)."""
    subprocess.run(
        [podman(), "rm", "--force", "--ignore", "--time", "10", name],
        check=False,
        capture_output=True,
        timeout=60,
    )
