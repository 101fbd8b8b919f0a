"""`publish-dashboard`: render the dashboard from the warehouse into a folder.

The page is written to a temporary file and renamed, so a viewer (or nginx)
never sees a half-written dashboard.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from dashboard.charts import COLOURS, growth_bars, line
from dashboard.warehouse import Snapshot, duckdb_path, read_snapshot

LABELS = {
    "new_users": "new",
    "retained_users": "retained",
    "resurrected_users": "resurrected",
    "churned_users": "churned",
}


def render(snapshot: Snapshot, published_at: str) -> str:
    env = Environment(loader=PackageLoader("dashboard"), autoescape=select_autoescape(["html", "j2"]))
    last_week = snapshot.weekly[-1] if snapshot.weekly else None
    ratio = last_week.get("quick_ratio") if last_week else None
    return env.get_template("dashboard.html.j2").render(
        totals=snapshot.totals,
        last_week=last_week,
        quick_ratio=f"{ratio:.2f}" if ratio is not None else "–",
        labels=LABELS,
        colours=COLOURS,
        growth_svg=growth_bars(snapshot.weekly, LABELS),
        dau_svg=line(
            [(str(r["day"]), r["active_users"]) for r in snapshot.daily_active],
            COLOURS["active_users"],
            "Daily active users",
        ),
        recent_weeks=list(reversed(snapshot.weekly[-8:])),
        layer_rows=snapshot.layer_rows,
        published_at=published_at,
    )


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--out-dir", type=Path, default=Path(os.environ.get("DASHBOARD_DIR", "dashboard-out"))
    )
    args = parser.parse_args(argv)
    snapshot = read_snapshot(duckdb_path())
    published_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    index = args.out_dir / "index.html"
    _write_atomic(index, render(snapshot, published_at))
    summary: dict[str, Any] = {
        "published_at": published_at,
        "layer_rows": snapshot.layer_rows,
        "totals": snapshot.totals,
        "weeks": len(snapshot.weekly),
    }
    _write_atomic(args.out_dir / "summary.json", json.dumps(summary, default=str, indent=2))
    print(json.dumps({"dashboard": str(index.resolve()), "weeks": len(snapshot.weekly)}))


if __name__ == "__main__":
    main()
