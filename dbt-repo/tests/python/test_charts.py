from __future__ import annotations

import datetime as dt

from dashboard.charts import _ticks, growth_bars, line
from dashboard.publish import LABELS


def test_ticks_are_round_and_cover_both_signs() -> None:
    assert _ticks(-888, 2589) == [-500, 0, 500, 1000, 1500, 2000, 2500]
    assert _ticks(0, 806) == [0, 200, 400, 600, 800]
    assert _ticks(5, 5) == [5]


def test_charts_render_edge_cases_without_dividing_by_zero() -> None:
    week = {
        "period_start": dt.date(2025, 3, 3),
        "new_users": 0,
        "retained_users": 0,
        "resurrected_users": 0,
        "churned_users": 0,
    }
    assert growth_bars([week], LABELS).startswith("<svg")
    assert growth_bars([], LABELS) == "<p>No weeks yet.</p>"
    assert "<polyline" in line([("2025-03-03", 0)], "#000", "flat")


def test_labels_are_escaped() -> None:
    assert "&lt;b&gt;" in line([("2025-<b>", 1), ("2025-x", 2)], "#000", "<b>")
