"""Containers for the image tests: podman's Docker API and testcontainers over it.

There is no Docker engine on the CI machines; podman serves the same API on a
unix socket (`podman system service`), which testcontainers drives unchanged.
Ryuk, testcontainers' reaper, is an image that cannot be pulled here, so it is
off and every container is removed by `run_container` itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONTAINERS_CONF = ROOT / "tools" / "podman" / "containers.conf"
COMPONENTS = ("scripts", "dbt", "airflow", "bi")


def podman_env(**extra: str) -> dict[str, str]:
    """This process's environment with the repository's podman configuration (runc, no ulimits)."""
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF), **extra}


def podman(*args: str, env: dict[str, str] | None = None) -> str:
    """Run podman to completion; its standard output."""
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=True, env=env or podman_env()
    ).stdout


def inspect(ref: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    return dict(json.loads(podman("image", "inspect", ref, env=env))[0])


def image_file(ref: str, path: str, destination: Path, env: dict[str, str] | None = None) -> Path:
    """Copy one file out of an image (pulled if missing, as a runtime would)."""
    created = podman("create", ref, env=env).strip()
    try:
        podman("cp", f"{created}:{path}", str(destination), env=env)
    finally:
        subprocess.run(
            ["podman", "rm", "--force", created], capture_output=True, check=False, env=env or podman_env()
        )
    return destination


def shared_dir(path: Path) -> Path:
    """A host folder the images' non-root user (uid 50000) may write."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    return path


def pyproject_version(component: str) -> str:
    return str(
        tomllib.loads((ROOT / f"{component}-repo" / "pyproject.toml").read_text())["project"]["version"]
    )


def load_tool(name: str) -> Any:
    """A module of tools/ (not a package), as the Makefile runs it."""
    import importlib.util

    sys.path.insert(0, str(ROOT / "tools"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_images() -> dict[str, dict[str, Any]]:
    """The three images, by `tools/images.py build` (after `make images`, the layer cache's: seconds)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "images.py"), "build", "--json"],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert result.returncode == 0, f"image build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return {b["component"]: b for b in json.loads(result.stdout[result.stdout.index("[\n") :])}


class PodmanService:
    """`podman system service` on a socket of its own, for the length of a `with` block."""

    def __init__(self, folder: Path, env: dict[str, str] | None = None) -> None:
        self.socket = folder / "podman.sock"
        self.env = env or podman_env()
        self.url = f"unix://{self.socket}"
        self._process: subprocess.Popen[bytes] | None = None
        self._saved: dict[str, str | None] = {}

    def __enter__(self) -> PodmanService:
        podman = shutil.which("podman")
        assert podman, "podman is not installed: `make system-packages` installs it"
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [podman, "system", "service", "--time=0", self.url],
            env=self.env,
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
    # No network of its own unless it asks for the host's: a container on podman's bridge adds an
    # interface to the host, and Chromium, in a browser test running beside it, drops its connections
    # on every such change of the host's network.
    kwargs["network_mode"] = "host" if network_host else "none"
    container = container.with_kwargs(**kwargs)
    container.start()
    try:
        status = container.get_wrapped_container().wait(timeout=timeout)
        stdout, stderr = container.get_logs()
        return int(status["StatusCode"]), stdout.decode(), stderr.decode()
    finally:
        container.stop(force=True, delete_volume=True)


PLATFORM_LABEL = "app.kubernetes.io/part-of=data-platform"


class StartedContainers:
    """Which images the platform's containers ran while a `with` block runs, in order.

    It follows podman's event stream live (the event log on disk rotates, so a
    query after the fact can miss what a long run started), only containers
    labelled as the platform's (anything else on the machine is not ours),
    bracketed by two marker containers so that no start is missed at either end.
    `digests()` answers what each started image is by content: podman may name
    an image started by digest by one of its tags.
    """

    def __init__(self, marker_image: str) -> None:
        self.marker_image = marker_image
        self.images: list[str] = []
        self._events: list[tuple[str, str]] = []
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            image, _, name = line.strip().rpartition(" ")
            self._events.append((image, name))

    def _marker(self) -> int:
        """Start a marker container; the index of its start event once podman reports it."""
        name = f"marker-{os.urandom(4).hex()}"
        subprocess.run(
            [
                "podman",
                "run",
                "--rm",
                "--network",
                "none",  # nothing to reach, and no interface added to the host (run_container)
                "--name",
                name,
                "--label",
                PLATFORM_LABEL,
                "--entrypoint",
                "true",
                self.marker_image,
            ],
            env=podman_env(),
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for index, (_, seen) in enumerate(list(self._events)):
                if seen == name:
                    return index
            time.sleep(0.1)
        return -1

    def __enter__(self) -> StartedContainers:
        self._process = subprocess.Popen(
            [
                "podman",
                "events",
                "--filter",
                "event=start",
                "--filter",
                f"label={PLATFORM_LABEL}",
                "--format",
                "{{.Image}} {{.Name}}",
            ],
            env=podman_env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        for _ in range(12):  # the stream goes live a moment after it starts
            self._start = self._marker()
            if self._start >= 0:
                return self
        raise AssertionError("podman events never reported the marker container")

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            if kind is None:
                end = self._marker()
                assert end > self._start, "podman events did not report the closing marker"
                self.images = [image for image, _ in self._events[self._start + 1 : end]]
        finally:
            if self._process is not None:
                self._process.terminate()
                self._process.wait(timeout=30)

    def digests(self) -> list[set[str]]:
        """For each started container, every manifest digest its image is known by."""
        found = []
        for image in self.images:
            inspected = json.loads(
                subprocess.run(
                    ["podman", "image", "inspect", image],
                    env=podman_env(),
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )[0]
            found.append(
                {inspected["Digest"], *(d.rpartition("@")[2] for d in inspected.get("RepoDigests") or [])}
            )
        return found
