from __future__ import annotations

from dashboard.charts import Series, _ticks, diverging_bars, heatmap, lines
from dashboard.publish import compact, last_complete_week


def test_ticks_are_round_and_cover_both_signs() -> None:
    assert _ticks(-888, 2589) == [-500, 0, 500, 1000, 1500, 2000, 2500]
    assert _ticks(0, 806) == [0, 200, 400, 600, 800]
    assert _ticks(0, 1, 6) == [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]  # the top tick is kept
    assert _ticks(5, 5) == [5]


def test_charts_render_edge_cases_without_dividing_by_zero() -> None:
    zero = Series("new", "#000", [0])
    assert diverging_bars(["2025-03-03"], [zero], [zero], "flat").startswith("<svg")
    assert diverging_bars([], [], [], "empty") == "<p>No data yet.</p>"
    assert "<polyline" in lines(["2025-03-03"], [Series("dau", "#000", [0])], "flat")
    assert lines(["2025-03-03"], [Series("ratio", "#000", [None])], "all null") == "<p>No data yet.</p>"
    assert heatmap([], 0, {}, "empty") == "<p>No data yet.</p>"


def test_churn_is_drawn_below_zero_and_stacks_add_up() -> None:
    svg = diverging_bars(
        ["w1"], [Series("a", "#1", [30]), Series("b", "#2", [10])], [Series("c", "#3", [20])], "x"
    )
    assert "w1 a: 30" in svg and "w1 c: 20" in svg and 'class="zero"' in svg


def test_a_gap_breaks_a_line() -> None:
    svg = lines(["d1", "d2", "d3", "d4"], [Series("r", "#000", [1, 2, None, 3])], "gap")
    assert svg.count("<polyline") == 2


def test_labels_are_escaped() -> None:
    assert "&lt;b&gt;" in lines(["2025-<b>", "2025-x"], [Series("<b>", "#000", [1, 2])], "<b>")


def test_tiles_use_the_last_complete_week_and_compact_numbers() -> None:
    weeks = [{"period_start": "2025-04-28"}, {"period_start": "2025-05-05"}]
    assert last_complete_week(weeks, "2025-05-05")["period_start"] == "2025-04-28"
    assert last_complete_week(weeks, "2025-05-11")["period_start"] == "2025-05-05"
    assert (compact(31_619_980), compact(4_709), compact(0)) == ("31.6M", "4,709", "0")
