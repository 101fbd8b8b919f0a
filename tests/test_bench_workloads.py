"""`make bench`'s workloads run at a tiny scale, so a change that breaks one is found by `make test`.

The benchmark itself is never a test (performance targets live in `make bench`,
not in timed assertions): these check that a workload still runs end to end and
reconciles what it measures, nothing about its speed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # real processes: an HTTP API, a Kafka broker, the CLI

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS_PYTHON = ROOT / "scripts-repo" / ".venv" / "bin" / "python"


def test_the_extract_workload_lands_every_event_it_measures() -> None:
    """P4: the events API and a Kafka topic, each drained bare and through extract-load; the workload
    itself asserts each landed manifest counts every event (it once read the stream's day where the
    extracts land, and `make bench` failed)."""
    done = subprocess.run(
        [str(SCRIPTS_PYTHON), str(ROOT / "bench" / "workloads" / "extract_throughput.py"),
         "--reps", "1", "--events", "2000", "--kafka-events", "2000"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    cases = {row["case"]: row for row in rows}
    assert {row["group"] for row in rows} == {"extract over HTTP", "landed bytes per event", "Kafka consumer"}
    for case in (
        "events API: extract-load extract -> bucket",
        "Kafka: extract-load stream -> bucket, offsets committed",
    ):
        assert cases[case]["events"] == 2000 and cases[case]["value"] > 0, cases[case]
