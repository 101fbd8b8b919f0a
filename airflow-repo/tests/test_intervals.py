from __future__ import annotations

import pendulum
import pytest

from pipeline_runtime.intervals import plan_intervals

UTC = pendulum.timezone("UTC")


def test_a_scheduled_run_covers_its_local_day() -> None:
    # 16:00 UTC is midnight in GMT+8: the data interval is one local day.
    start = pendulum.datetime(2025, 3, 4, 16, tz=UTC)
    assert plan_intervals({}, start, start.add(days=1)) == [{"start": "2025-03-05", "end": "2025-03-06"}]


def test_a_range_is_chunked_without_losing_or_repeating_a_day() -> None:
    chunks = plan_intervals({"start": "2025-03-01", "end": "2025-03-18"}, None, None, days_per_task=7)
    assert chunks == [
        {"start": "2025-03-01", "end": "2025-03-08"},
        {"start": "2025-03-08", "end": "2025-03-15"},
        {"start": "2025-03-15", "end": "2025-03-18"},
    ]
    assert len(plan_intervals({"start": "2025-03-01", "end": "2025-03-18"}, None, None)) == 17


def test_an_empty_range_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty range"):
        plan_intervals({"start": "2025-03-05", "end": "2025-03-05"}, None, None)


def test_a_run_without_interval_or_range_is_refused_clearly() -> None:
    from pipeline_runtime.intervals import NoIntervalError

    with pytest.raises(NoIntervalError, match="no data interval"):
        plan_intervals({}, None, None)


def test_the_load_covers_every_day_the_extract_landed() -> None:
    from pipeline_runtime.intervals import landed_span

    batch = {"source": "shop_orders", "start": "2025-03-05", "end": "2025-03-06"}
    # A database source lands the day before again (lookback), then the summary line.
    results = [
        {"source": "shop_orders", "interval_start": "2025-03-04", "rows": 3, "run_id": "a"},
        {"source": "shop_orders", "interval_start": "2025-03-05", "rows": 5, "run_id": "b"},
        {"source": "shop_orders", "days": 2, "rows": 8, "watermark": "2025-03-06"},
    ]
    assert landed_span(batch, results) == {"start": "2025-03-04", "end": "2025-03-06"}
    # A REST extract lands exactly its days: nothing changes.
    rest = [{"source": "events", "interval_start": "2025-03-05", "rows": 9, "run_id": "c"}]
    assert landed_span(batch, rest) == {"start": "2025-03-05", "end": "2025-03-06"}
    assert landed_span(batch, []) == {"start": "2025-03-05", "end": "2025-03-06"}
