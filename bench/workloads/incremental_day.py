"""P2: one more day on top of a year of history, against a full build of the same data.

Runs in the dbt-repo environment. A year of generated events (plus the day
after it) is landed once. Then, not timed, the year alone is loaded and
built: that warehouse (and dbt's partial parse) is kept as the history. Per
repetition:

- full build (the baseline): an empty warehouse, `extract-load load` of
  every day including the new one, `dbt build` of every model and test;
- one more day: a copy of the history, `extract-load load` of the new day
  only, and the same `dbt build` (incremental models merge the new day).

Both are timed from outside, in seconds (lower is better), so the ratio is
the share of a full build that a day costs. dbt's own elapsed time (its work
after start-up and parsing) is kept beside each, to tell a fixed cost from
one that grows with the data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
from pathlib import Path

from _common import emit, fresh, land, landed_folder, next_day, run_platform


def as_if_landed_daily(bucket: Path) -> None:
    """Date each landed day's manifest the morning after the day, as a daily run would have landed it.

    Generated in one go, every day carries the same landing time, so the
    incremental models' look-back (`lookback_days` of loads before the
    newest) would take the whole year for recent: not the daily case.
    """
    for path in (bucket / "raw" / "events").glob("dt=*/_manifest.json"):
        manifest = json.loads(path.read_text())
        landed = dt.datetime.combine(dt.date.fromisoformat(manifest["interval_end"]), dt.time(1), dt.UTC)
        manifest["extracted_at"] = landed.isoformat(timespec="seconds")
        path.write_text(json.dumps(manifest, indent=2, sort_keys=True))


def bench(events: int, days: int, reps: int, workdir: Path, prepare: bool = False) -> None:
    landed = land(events, days + 1, workdir)
    as_if_landed_daily(landed.bucket)
    history_days, new_day = landed.days[:-1], landed.days[-1]
    group = f"{len(history_days)} days, {landed.rows:,} events"
    print(f"    {group}: new day {new_day}, {landed.bytes / 1e6:.0f} MB landed", file=sys.stderr)
    history = workdir / "history.duckdb"
    if not (workdir / "history.ok").exists():
        run = run_platform(landed.bucket, fresh(history), history_days[0], new_day, workdir)
        print(f"    history built in {run.seconds:.1f} s (not timed)", file=sys.stderr)
        (workdir / "history.ok").write_text("")
    if prepare:
        return
    for rep in range(reps):
        warehouse = fresh(workdir / "full.duckdb")
        full = run_platform(landed.bucket, warehouse, landed.days[0], next_day(new_day), workdir)
        emit("P2", group, "full build: load every day + dbt build", full.seconds, "s", baseline=True,
             lower_is_better=True, rep=rep, load_seconds=full.load_seconds, dbt_seconds=full.dbt_seconds,
             dbt_work_seconds=full.dbt_work_seconds, peak_rss=full.peak_rss)  # fmt: skip
        warehouse = fresh(workdir / "incremental.duckdb")
        shutil.copyfile(history, warehouse)
        day = run_platform(landed.bucket, warehouse, new_day, next_day(new_day), workdir)
        emit("P2", group, "one more day: load it + dbt build (incremental)", day.seconds, "s",
             lower_is_better=True, rep=rep, load_seconds=day.load_seconds, dbt_seconds=day.dbt_seconds,
             dbt_work_seconds=day.dbt_work_seconds, peak_rss=day.peak_rss,
             note=f"dbt start-up {day.dbt_seconds - day.dbt_work_seconds:.1f} s of it")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--events", type=int, default=3_650_000, help="events over the history and the day")
    parser.add_argument("--days", type=int, default=365, help="days of history before the new day")
    parser.add_argument("--workdir", type=Path, default=None, help="keep landed data here between runs")
    parser.add_argument("--prepare", action="store_true", help="only land the data and build the history")
    args = parser.parse_args()
    base = args.workdir or Path(tempfile.mkdtemp(prefix="bench-p2-"))
    try:
        folder = landed_folder(base, args.events, args.days + 1)
        bench(args.events, args.days, args.reps, folder, args.prepare)
    finally:
        if args.workdir is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
