"""Containers for the image tests: podman's Docker API and testcontainers over it.

There is no Docker engine on the CI machines; podman serves the same API on a
unix socket (`podman system service`), which testcontainers drives unchanged.
Ryuk, testcontainers' reaper, is an image that cannot be pulled here, so it is
off and every container is removed by `run_container` itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[1]
CONTAINERS_CONF = ROOT / "tools" / "podman" / "containers.conf"


class PodmanService:
    """`podman system service` on a socket of its own, for the length of a `with` block."""

    def __init__(self, folder: Path) -> None:
        self.socket = folder / "podman.sock"
        self.url = f"unix://{self.socket}"
        self._process: subprocess.Popen[bytes] | None = None
        self._saved: dict[str, str | None] = {}

    def __enter__(self) -> PodmanService:
        podman = shutil.which("podman")
        assert podman, "podman is not installed: `make container-tools` installs it"
        self._process = subprocess.Popen(
            [podman, "system", "service", "--time=0", self.url],
            env={**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not self.socket.exists():
            assert self._process.poll() is None, "podman system service exited"
            assert time.monotonic() < deadline, "podman's API socket did not appear in 60 s"
            time.sleep(0.1)
        for key, value in {"DOCKER_HOST": self.url, "TESTCONTAINERS_RYUK_DISABLED": "true"}.items():
            self._saved[key] = os.environ.get(key)
            os.environ[key] = value
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=30)


def run_container(
    service: PodmanService,
    image: str,
    command: list[str],
    *,
    entrypoint: str | None = None,
    volumes: dict[Path, str] | None = None,
    environment: dict[str, str] | None = None,
    network_host: bool = False,
    timeout: float = 900,
) -> tuple[int, str, str]:
    """Run one command in `image` to completion: (exit code, stdout, stderr)."""
    assert os.environ.get("DOCKER_HOST") == service.url
    from testcontainers.core.container import DockerContainer

    container = DockerContainer(image).with_command(command)
    for host, inside in (volumes or {}).items():
        container = container.with_volume_mapping(str(host), inside, "rw")
    for key, value in (environment or {}).items():
        container = container.with_env(key, value)
    kwargs: dict[str, object] = {}
    if entrypoint is not None:
        kwargs["entrypoint"] = [entrypoint]
    if network_host:
        kwargs["network_mode"] = "host"
    container = container.with_kwargs(**kwargs)
    container.start()
    try:
        status = container.get_wrapped_container().wait(timeout=timeout)
        stdout, stderr = container.get_logs()
        return int(status["StatusCode"]), stdout.decode(), stderr.decode()
    finally:
        container.stop(force=True, delete_volume=True)
