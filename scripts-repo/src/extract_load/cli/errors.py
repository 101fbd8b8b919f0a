"""Exit codes a caller acts on, and the one place where what went wrong becomes one.

Airflow's runner (airflow-repo `pipeline_runtime/runner.py`) decides whether a
task is retried from these codes; a test checks both sides declare the same
numbers (ADR 0001: subprojects meet through command lines, not imports).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

EXIT_QUARANTINE_THRESHOLD = 3  # data problem: a person must look; retrying will not help
EXIT_LANDING_INVALID = 4  # the interval's landing is missing or corrupt: re-run the extract
EXIT_RECONCILIATION = 5  # counts do not add up: a bug or tampering; nothing was committed
EXIT_SOURCE_UNAVAILABLE = 6  # the source kept failing after retries: retry later


class Failure(click.ClickException):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@contextlib.contextmanager
def exit_codes() -> Iterator[None]:
    """Map the stages' errors to the exit codes above (anything else is 1, a usage error 2)."""
    from extract_load.landing.manifest import ManifestError
    from extract_load.load.reconcile import QuarantineThresholdError, ReconciliationError
    from extract_load.sources.file import FileSourceError

    try:
        yield
    except ManifestError as exc:  # missing, corrupt, or another run holds or committed the interval
        raise Failure(str(exc), EXIT_LANDING_INVALID) from exc
    except QuarantineThresholdError as exc:
        raise Failure(str(exc), EXIT_QUARANTINE_THRESHOLD) from exc
    except ReconciliationError as exc:
        raise Failure(str(exc), EXIT_RECONCILIATION) from exc
    except (FileSourceError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
