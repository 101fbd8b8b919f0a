"""Running a subproject's command where this deployment runs them.

Locally that is a subprocess of the worker, in the subproject's own venv; with
`PLATFORM_RUNNER=container` the subproject's pinned image started by podman
(pipeline_runtime.containers); on Kubernetes (`PLATFORM_RUNNER=kubernetes`) a
pod of that image, started with the same arguments (pipeline_runtime.kubernetes). The
command's stdout is a stream of JSON result lines (the CLI contract); they are
returned so tasks can push them to XCom, while stderr goes to the task log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import subprocess
import threading
from typing import Any

from pipeline_runtime.commands import Command
from pipeline_runtime.settings import settings

log = logging.getLogger(__name__)


# Exit codes of `extract-load` (declared in its cli/errors.py; a test keeps these equal) after
# which a retry cannot help: a quarantine over its threshold needs a person, and failed
# reconciliation is a bug. Others (4: landing, 6: source unavailable) are retried.
EXIT_QUARANTINE_THRESHOLD = 3
EXIT_RECONCILIATION = 5
NO_RETRY_EXIT_CODES = frozenset({EXIT_QUARANTINE_THRESHOLD, EXIT_RECONCILIATION})


class CommandFailedError(RuntimeError):
    """The command exited non-zero; its output is in the task log."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def run(command: Command, timeout_seconds: float | None = None) -> list[dict[str, Any]]:
    if settings().on_kubernetes:
        from pipeline_runtime.kubernetes import run_in_pod

        log.info("running %s command in a pod: %s", command.component, shlex.join(command.in_image))
        return run_in_pod(command)
    env = {**os.environ, **command.env}  # noqa: TID251 - the whole environment passed on, not read
    argv: list[str] | tuple[str, ...] = command.argv
    container: str | None = None
    if settings().in_containers:
        from pipeline_runtime import containers

        container = containers.container_name(command)
        argv = containers.podman_argv(command, container)
        log.info("running %s command in container %s: %s", command.component, container, shlex.join(argv))
    else:
        log.info("running %s command: %s", command.component, command.display())
    try:
        return _run(command, argv, env, timeout_seconds)
    finally:
        if container is not None:
            from pipeline_runtime import containers

            containers.remove(container)  # a no-op after a normal exit (--rm)


def _run(
    command: Command, argv: list[str] | tuple[str, ...], env: dict[str, str], timeout_seconds: float | None
) -> list[dict[str, Any]]:
    process = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )

    def relay_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.info("%s", line.rstrip())

    relay = threading.Thread(target=relay_stderr, daemon=True)
    relay.start()
    results: list[dict[str, Any]] = []
    assert process.stdout is not None
    for line in process.stdout:
        text = line.rstrip()
        log.info("%s", text)
        if text.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                results.append(json.loads(text))
    try:
        code = process.wait(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    relay.join(timeout=5)
    if code != 0:
        message = f"{command.component} command exited with {code}: {command.display()}"
        if code in NO_RETRY_EXIT_CODES:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"{message} (not retried: retrying cannot fix this)")
        raise CommandFailedError(message, code)
    return results
