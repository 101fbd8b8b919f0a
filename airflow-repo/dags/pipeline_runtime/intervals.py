"""Which local days a run covers, and in what chunks, from its data interval or its params.

Business days are local days of the app's export (GMT+8). A scheduled run
covers its own data interval; a run triggered with `start`/`end` reprocesses
that range. Days are grouped `days_per_task` at a time so a long range is not
mostly task start-up; each day is still its own interval downstream.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

LOCAL_TZ = "Asia/Singapore"  # the export's GMT+8


class NoIntervalError(ValueError):
    """Neither params nor the run say which days to process; retrying cannot help."""


def plan_intervals(
    params: dict[str, Any], interval_start: Any, interval_end: Any, days_per_task: int | None = 1
) -> list[dict[str, str]]:
    if params.get("start"):
        first = dt.date.fromisoformat(params["start"])
        last = dt.date.fromisoformat(params["end"]) if params.get("end") else first + dt.timedelta(days=1)
    elif interval_start is None or interval_end is None:
        raise NoIntervalError(
            "this run has no data interval (it was triggered without a logical date): "
            'trigger it with {"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"} or with a logical date'
        )
    else:
        first = interval_start.in_timezone(LOCAL_TZ).date()
        last = interval_end.in_timezone(LOCAL_TZ).date()
    if last <= first:
        raise ValueError(f"empty range {first}..{last}")
    step = int(days_per_task or 1)
    return [
        {
            "start": (first + dt.timedelta(days=i)).isoformat(),
            "end": min(first + dt.timedelta(days=i + step), last).isoformat(),
        }
        for i in range(0, (last - first).days, step)
    ]


def landed_span(batch: dict[str, str], results: list[dict[str, Any]]) -> dict[str, str]:
    """The days the load must cover: the batch's, widened to every day the extract landed.

    An extract may land more days than it was asked for (a database source
    lands `lookback_days` earlier ones again, for late commits); each landed
    day replaced its landing, so its load must follow, or the raw table would
    keep the day's older version. Manifest lines are the ones naming a day.
    """
    days = [
        dt.date.fromisoformat(r["interval_start"]) for r in results if "interval_start" in r and "run_id" in r
    ]
    start = min([batch["start"], *(day.isoformat() for day in days)])
    end = max([batch["end"], *((day + dt.timedelta(days=1)).isoformat() for day in days)])
    return {"start": start, "end": end}
