"""Run the longest modules first.

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

import pytest

LONGEST_FIRST = (
    "test_public_viewer",  # ~14: make up on the demo's data, Chromium, nginx
    "test_gitops_walk",  # ~13: registry, sandbox DAG runs in containers, refresh, rollback
    "test_production_dags",  # ~12: daily runs, backfill, refresh, stream, maintenance
    "test_pipeline_e2e",  # ~9: the demo, and an export over the quarantine threshold
    "test_monitoring_live",  # ~7: the demo, Prometheus and its alerts
    "test_images",  # ~6: the three images under testcontainers
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    # A stable sort: each module's tests keep their order (module fixtures depend on it).
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))
