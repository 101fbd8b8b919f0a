"""P2: one more day on top of history, against a full build, and on a month against a year.

Runs in the dbt-repo environment. A year of generated events plus the day
after it (`--events` in all, exactly: the user count is calibrated) is landed
once. Then, not timed, two histories are loaded and built: the year, and the
last `--month-days` of it. Per repetition:

- full build (the baseline of the first group): an empty warehouse,
  `extract-load load` of every day including the new one, `dbt build` of
  every model and data test;
- one more day on a year: a copy of the year's warehouse, `extract-load load`
  of the new day only, and the same `dbt build` (the incremental models
  rebuild what that day changes, ADR 0019);
- the same day on a month (the baseline of the second group): the same, on a
  copy of the month's warehouse.

Each is timed from outside, in seconds (lower is better), so the first ratio
is the share of a full build a day costs (target: at most 5%) and the second
how much more a day costs on a year than on a month (target: at most 1.3x:
the cost follows the day, not the history). dbt's fixed start-up (its wall
time less its own elapsed time) is reported in a group of its own.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from _common import Landed, emit, fresh, land, landed_folder, next_day, repeats_again, run_platform


def histories(landed: Landed, month_days: int, workdir: Path) -> dict[str, Path]:
    """The warehouses a new day lands on: a year (every day but the last) and its last month."""
    built = {}
    for name, first in (("year", landed.days[0]), ("month", landed.days[-1 - month_days])):
        history = workdir / f"history-{name}.duckdb"
        if not (workdir / f"history-{name}.ok").exists():
            run = run_platform(landed.bucket, fresh(history), first, landed.days[-1], workdir)
            print(f"    {name} of history built in {run.seconds:.1f} s (not timed)", file=sys.stderr)
            (workdir / f"history-{name}.ok").write_text("")
        built[name] = history
    return built


def bench(events: int, days: int, month_days: int, reps: int, workdir: Path, prepare: bool = False) -> None:
    landed = land(events, days + 1, workdir, exact=True)
    new_day = landed.days[-1]
    print(f"    {len(landed.days)} days, {landed.rows:,} events, new day {new_day}", file=sys.stderr)
    built = histories(landed, month_days, workdir)
    if prepare:
        return
    full_group = f"{len(landed.days)} days, {landed.rows:,} events"
    day_group = f"one more day ({new_day}) on top of"
    startup_group = "dbt start-up, included above (fixed)"
    full_seconds: float | None = None
    for rep in range(reps):
        if rep == 0 or repeats_again(full_seconds):  # at full scale a build of 25M events runs once
            full = run_platform(landed.bucket, fresh(workdir / "full.duckdb"), landed.days[0],
                                next_day(new_day), workdir)  # fmt: skip
            full_seconds = full.seconds
            emit("P2", full_group, "full build: load every day + dbt build", full.seconds, "s", baseline=True,
                 lower_is_better=True, rep=rep, load_seconds=full.load_seconds, dbt_seconds=full.dbt_seconds,
                 dbt_work_seconds=full.dbt_work_seconds, peak_rss=full.peak_rss)  # fmt: skip
        for name, label in (("month", f"{month_days} days of history"), ("year", f"{days} days of history")):
            warehouse = fresh(workdir / f"day-on-{name}.duckdb")
            shutil.copyfile(built[name], warehouse)
            day = run_platform(landed.bucket, warehouse, new_day, next_day(new_day), workdir)
            extra = {"rep": rep, "load_seconds": day.load_seconds, "dbt_seconds": day.dbt_seconds,
                     "dbt_work_seconds": day.dbt_work_seconds, "peak_rss": day.peak_rss}  # fmt: skip
            case = f"{label}: load the day + dbt build (incremental)"
            emit(
                "P2",
                day_group,
                case,
                day.seconds,
                "s",
                baseline=name == "month",
                lower_is_better=True,
                **extra,
            )
            if name == "year":
                emit("P2", full_group, f"one more day on {label}: load it + dbt build (incremental)",
                     day.seconds, "s", lower_is_better=True, **extra)  # fmt: skip
            emit("P2", startup_group, f"one more day on {label}", day.dbt_seconds - day.dbt_work_seconds, "s",
                 lower_is_better=True, rep=rep)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--events", type=int, default=25_000_000, help="events over the year and the day")
    parser.add_argument("--days", type=int, default=365, help="days of history before the new day")
    parser.add_argument("--month-days", type=int, default=30, help="days of the shorter history")
    parser.add_argument("--workdir", type=Path, default=None, help="keep landed data here between runs")
    parser.add_argument("--prepare", action="store_true", help="only land the data and build the histories")
    args = parser.parse_args()
    base = args.workdir or Path(tempfile.mkdtemp(prefix="bench-p2-"))
    try:
        folder = landed_folder(base, args.events, args.days + 1)
        bench(args.events, args.days, args.month_days, args.reps, folder, args.prepare)
    finally:
        if args.workdir is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
