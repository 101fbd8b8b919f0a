"""The e2e session: the longest modules first, and one generated demo shared by its readers.

`make test-e2e` runs two xdist workers with `--dist loadscope
--no-loadscope-reorder`: each worker takes the next whole module when it is
free, in collection order (by default xdist queues the modules with the most
tests first, which put the one-test GitOps walk last). In file
name order a long module (the stack behind the viewer, the GitOps walk) could
start last and run alone while the other core idles; longest first keeps both
busy to the end. The durations are from `make test`'s JUnit report
(`.test-results/e2e.xml`), minutes on 2 cores.
"""

from __future__ import annotations

import fcntl
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

LONGEST_FIRST = (
    "test_gitops_walk",  # ~12: registry, the sandbox stack in containers, tags, refresh, rollback
    "test_production_dags",  # ~12: daily runs, backfill, refresh, stream, maintenance
    "test_public_viewer",  # ~8: make up on its own demo, Chromium, nginx
    "test_pipeline_e2e",  # ~3: the session's demo; ~6 more with the public sample's two runs
    "test_images",  # ~6: the three images under testcontainers
    "test_monitoring_live",  # ~3: the session's demo (done by now), Prometheus and its alerts
)
# The generated stream the demo runs on when a test reads a finished demo (`generated_demo`).
GENERATED_DEMO = {"DEMO_DAYS": "28", "DEMO_EVENTS": "4000", "DEMO_START": "2025-02-03", "DEMO_SEED": "5"}


# Every test here is of one kind, so that targets select by marker (ADR 0021): `make test-platform`
# runs the seconds-long checks, `make test-e2e` the pipeline runs, and nothing falls between them.
KINDS = ("platform", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    unkinded = [
        item.nodeid for item in items if sum(item.get_closest_marker(kind) is not None for kind in KINDS) != 1
    ]
    if unkinded:
        raise pytest.UsageError(
            f"each test under tests/ carries exactly one of the markers {', '.join(KINDS)}: "
            + ", ".join(unkinded)
        )
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    # A stable sort: each module's tests keep their order (module fixtures depend on it).
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))


@dataclass(frozen=True)
class Demo:
    """A finished `tools/demo.sh` run: its folder and what it printed."""

    folder: Path
    stdout: str


@pytest.fixture(scope="session")
def generated_demo(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Demo:
    """The demo on a generated stream, run once per test session and shared by the modules that read it.

    The pipeline's layer-by-layer checks and the monitoring stack read the same finished run
    (readers only: a module that writes, e.g. more metrics, works on its own copy). Under xdist
    the workers share one folder; the first to ask runs the demo while holding a lock, and the
    other finds it done. Only a run that succeeded is marked done, so a failure is every
    asker's failure, never a half-built warehouse.
    """
    from test_pipeline_e2e import run_demo

    # xdist's workers share the parent of their base folders; without xdist that parent
    # outlives the session, so a single process keeps the demo in its own base folder.
    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        root = root.parent
    folder = root / "generated-demo"
    printed, done = folder.with_suffix(".stdout"), folder.with_suffix(".done")
    with (root / "generated-demo.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            result = run_demo(folder, **GENERATED_DEMO)
            printed.write_text(result.stdout)
            done.touch()
    return Demo(folder=folder, stdout=printed.read_text())
