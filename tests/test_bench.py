"""`make bench`'s summary: medians, a ratio against every baseline of a group, the table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.platform  # the repository's own tools, no pipeline run


def _run_module():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _row(group: str, case: str, value: float | None, unit: str = "events/s", **extra: object) -> dict:
    return {"bench": "P1", "group": group, "case": case, "value": value, "unit": unit, **extra}


def test_every_case_gets_a_ratio_against_each_baseline_of_its_group() -> None:
    run = _run_module()
    rows = [
        *(_row("N=1M", "limit: CTAS", v, baseline=True) for v in (400.0, 500.0, 450.0)),
        *(_row("N=1M", "pandas: old way", v, baseline=True) for v in (20.0, 22.0, 21.0)),
        *(_row("N=1M", "platform", v) for v in (90.0, 100.0, 80.0)),
        _row("N=10M", "pandas: old way", None, baseline=True, note="out of memory"),
        _row("N=10M", "platform", 95.0),
    ]
    summary = {(s["group"], s["case"]): s for s in run.summarise(rows)}
    platform = summary[("N=1M", "platform")]
    assert (platform["median"], platform["min"], platform["max"], platform["runs"]) == (90.0, 80.0, 100.0, 3)
    assert platform["ratios"] == {"limit": 90.0 / 450.0, "pandas": 90.0 / 21.0}
    # A baseline that could not run gives no ratio, and its note reaches the table.
    assert summary[("N=10M", "platform")]["ratios"] == {}
    table = run.table(run.summarise(rows))
    assert "| P1 | N=1M | platform | 90 | 80 - 100 | events/s | 0.20x limit; 4.29x pandas | 3 |" in table
    assert "pandas: old way (out of memory) | - | - - - |" in table


def test_seconds_state_the_share_of_the_baseline() -> None:
    run = _run_module()
    rows = [
        *(
            _row("a year", "full build", v, unit="s", baseline=True, lower_is_better=True)
            for v in (100, 120, 110)
        ),
        *(_row("a year", "one more day", v, unit="s", lower_is_better=True) for v in (5.0, 6.0, 5.5)),
    ]
    day = next(s for s in run.summarise(rows) if s["case"] == "one more day")
    assert day["ratios"] == {"full build": 5.5 / 110}
    assert "0.05x full build" in run.table(run.summarise(rows))
