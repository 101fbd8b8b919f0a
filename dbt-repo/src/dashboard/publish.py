"""`publish-dashboard`: render the dashboard from the warehouse dbt built and publish it.

It reads whichever warehouse dbt's target names (DBT_TARGET: DuckDB locally,
BigQuery in clusters, or PostgreSQL) and publishes to DASHBOARD_URL: a folder
locally, `gs://<bucket>/dashboard` in clusters, which the public viewer
serves. A reader never sees half a dashboard, and the previous one is kept
under `previous/` (dashboard.destinations).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from importlib.metadata import version
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from dashboard.charts import COLOURS, PALETTE, Series, diverging_bars, heatmap, lines
from dashboard.destinations import ConcurrentPublishError, destination
from dashboard.warehouse import Snapshot, read_snapshot
from warehouses import from_environment
from warehouses.results import emit

LABELS = {
    "new_users": "new",
    "retained_users": "retained",
    "resurrected_users": "resurrected",
    "churned_users": "churned",
}
# How much of each grain the charts show: enough to see a trend, few enough to read.
GROWTH_WINDOW = {"daily": 90, "weekly": 52, "monthly": 36}
RETENTION_COHORTS = 16
SEGMENT_TYPES = {"platform": "Platform", "utm_source": "Acquisition source", "country": "Country"}


def _day(value: Any) -> str:
    return str(value)[:10]


def compact(value: float) -> str:
    """31619980 -> 31.6M: big totals fit a tile."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size * 10:
            return f"{value / size:,.1f}{suffix}"
    return f"{value:,.0f}"


def growth_panel(grain: str, periods: list[dict[str, Any]]) -> dict[str, Any]:
    shown = periods[-GROWTH_WINDOW[grain] :]
    names = [_day(p["period_start"]) for p in shown]

    def series(key: str) -> Series:
        return Series(LABELS[key], COLOURS[key], [p[key] for p in shown])

    return {
        "grain": grain,
        "periods": len(shown),
        "bars": diverging_bars(
            names,
            [series("retained_users"), series("new_users"), series("resurrected_users")],
            [series("churned_users")],
            f"{grain.capitalize()} growth accounting",
        ),
        "quick_ratio": lines(
            names,
            [Series("quick ratio", "#492970", [p["quick_ratio"] for p in shown])],
            f"{grain.capitalize()} quick ratio",
            height=180,
        ),
    }


def retention_panel(grain: str, cells: list[dict[str, Any]]) -> dict[str, Any]:
    cohorts = sorted({_day(c["cohort_start"]) for c in cells})[-RETENTION_COHORTS:]
    index = {name: i for i, name in enumerate(cohorts)}
    columns = min(RETENTION_COHORTS, 1 + max((c["periods_since"] for c in cells), default=0))
    rates = {
        (index[_day(c["cohort_start"])], c["periods_since"]): float(c["retention_rate"])
        for c in cells
        if _day(c["cohort_start"]) in index and c["periods_since"] < columns
    }
    sizes = {_day(c["cohort_start"]): c["cohort_size"] for c in cells}
    labels = [f"{name} ({sizes[name]:,})" for name in cohorts]
    return {"grain": grain, "svg": heatmap(labels, columns, rates, f"{grain.capitalize()} retention")}


def miles_panel(grain: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    rows = [r for r in rows if r["period_grain"] == grain]
    names = sorted({_day(r["period_start"]) for r in rows})[-GROWTH_WINDOW["weekly"] :]
    categories = sorted({r["transaction_category"] for r in rows})
    by_key = {(_day(r["period_start"]), r["transaction_category"]): r for r in rows}
    colour = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(categories)}

    def series(category: str, column: str, suffix: str) -> Series:
        values = [float(by_key[(n, category)][column]) if (n, category) in by_key else 0.0 for n in names]
        return Series(f"{category} {suffix}", colour[category], values)

    return {
        "grain": grain,
        "legend": colour,
        "svg": diverging_bars(
            names,
            [series(c, "miles_earned", "earned") for c in categories],
            [series(c, "miles_redeemed", "redeemed") for c in categories],
            f"Miles earned (up) and redeemed (down) per {grain}",
        ),
    }


def segment_panel(segment_type: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    rows = [r for r in rows if r["segment_type"] == segment_type]
    weeks = sorted({_day(r["period_start"]) for r in rows})[-GROWTH_WINDOW["weekly"] :]
    totals: dict[str, dict[str, float]] = {}
    for r in rows:
        t = totals.setdefault(r["segment_value"], {"events": 0, "miles_earned": 0.0, "new_users": 0})
        t["events"] += r["events"]
        t["miles_earned"] += float(r["miles_earned"])
        t["new_users"] += r["new_users"]
    values = sorted(totals, key=lambda v: -totals[v]["events"])[: len(PALETTE)]
    by_key = {(_day(r["period_start"]), r["segment_value"]): r for r in rows}
    last = weeks[-1] if weeks else None
    table = [
        {
            "value": v,
            "active_last_week": by_key[(last, v)]["active_users"] if last and (last, v) in by_key else 0,
            "new_users": int(totals[v]["new_users"]),
            "events": int(totals[v]["events"]),
            "miles_earned": totals[v]["miles_earned"],
        }
        for v in values
    ]
    series = [
        Series(
            v,
            PALETTE[i],
            [by_key[(w, v)]["active_users"] if (w, v) in by_key else 0 for w in weeks],
        )
        for i, v in enumerate(values)
    ]
    return {
        "type": segment_type,
        "title": SEGMENT_TYPES[segment_type],
        "svg": lines(weeks, series, f"Weekly active users by {SEGMENT_TYPES[segment_type].lower()}"),
        "legend": {s.label: s.colour for s in series},
        "table": table,
        "last_week": last,
    }


def last_complete_week(weeks: list[dict[str, Any]], last_day: Any) -> dict[str, Any] | None:
    """The newest week whose seven days all lie in the data: a partial week's churn looks like a crash."""
    if not weeks or last_day is None:
        return weeks[-1] if weeks else None
    end = dt.date.fromisoformat(_day(last_day))
    complete = [
        w for w in weeks if dt.date.fromisoformat(_day(w["period_start"])) + dt.timedelta(days=6) <= end
    ]
    return complete[-1] if complete else weeks[-1]


def render(snapshot: Snapshot, published_at: str) -> str:
    env = Environment(loader=PackageLoader("dashboard"), autoescape=select_autoescape(["html", "j2"]))
    env.filters["compact"] = compact
    last_week = last_complete_week(snapshot.weekly, snapshot.totals.get("last_day"))
    ratio = last_week.get("quick_ratio") if last_week else None
    latest = snapshot.activity[-1] if snapshot.activity else None
    days = [_day(a["period_start"]) for a in snapshot.activity]
    return env.get_template("dashboard.html.j2").render(
        totals=snapshot.totals,
        latest=latest,
        last_week=last_week,
        quick_ratio=f"{ratio:.2f}" if ratio is not None else "–",
        labels=LABELS,
        colours=COLOURS,
        activity_svg=lines(
            days,
            [
                Series("DAU", COLOURS["active_users"], [a["dau"] for a in snapshot.activity]),
                Series("WAU (7 days)", COLOURS["new_users"], [a["wau"] for a in snapshot.activity]),
                Series(
                    "MAU (28 days)", COLOURS["resurrected_users"], [a["mau_28d"] for a in snapshot.activity]
                ),
            ],
            "Daily, weekly and monthly active users",
        ),
        stickiness_svg=lines(
            days,
            [
                Series("DAU/MAU", COLOURS["active_users"], [a["dau_mau_ratio"] for a in snapshot.activity]),
                Series("WAU/MAU", COLOURS["new_users"], [a["wau_mau_ratio"] for a in snapshot.activity]),
            ],
            "Stickiness",
            percent=True,
            height=200,
        ),
        growth_panels=[growth_panel(g, snapshot.growth[g]) for g in ("weekly", "daily", "monthly")],
        retention_panels=[retention_panel(g, snapshot.retention[g]) for g in ("weekly", "monthly")],
        miles_panels=[miles_panel(g, snapshot.miles) for g in ("week", "month")],
        segment_panels=[segment_panel(t, snapshot.segments) for t in SEGMENT_TYPES],
        recent_weeks=list(reversed(snapshot.weekly[-8:])),
        layer_rows=snapshot.layer_rows,
        published_at=published_at,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # The dbt image's release version: what an image test and an operator compare with release.yaml.
    parser.add_argument("--version", action="version", version=version("platform-dbt"))
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--to",
        default=os.environ.get("DASHBOARD_URL") or "dashboard-out",
        help="a folder or gs://<bucket>/<prefix> (default: DASHBOARD_URL)",
    )
    where.add_argument("--out-dir", type=Path, help="a folder (the same as --to FOLDER)")
    parser.add_argument(
        "--target", default=None, help="the warehouse to read (default: DBT_TARGET, else duckdb)"
    )
    args = parser.parse_args(argv)
    snapshot = read_snapshot(from_environment(args.target))
    published_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    summary: dict[str, Any] = {
        "published_at": published_at,
        "layer_rows": snapshot.layer_rows,
        "totals": snapshot.totals,
        "weeks": len(snapshot.weekly),
    }
    files = {
        "index.html": render(snapshot, published_at).encode(),
        "summary.json": json.dumps(summary, default=str, indent=2).encode(),
    }
    try:
        location = destination(str(args.out_dir) if args.out_dir else args.to).publish(files)
    except ConcurrentPublishError as error:
        raise SystemExit(str(error)) from error
    emit({"dashboard": location, "weeks": len(snapshot.weekly)})


if __name__ == "__main__":
    main()
