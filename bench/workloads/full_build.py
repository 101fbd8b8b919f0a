"""P1: landed raw files of N events -> every analytics table, against the hardware and the old way.

Runs in the dbt-repo environment (dbt, DuckDB, pandas, psutil); the load is
scripts-repo's own CLI, as Airflow runs it. The events are generated and
landed once per size (not timed): gzipped JSON lines in the bucket layout
`extract-load extract-file` writes. Then, per repetition, each case starts
from an empty warehouse:

- platform: `extract-load load` of every landed day (validation, quarantine,
  reconciliation) + `dbt build` of every model and data test;
- DuckDB limit: one `create table ... as select * from read_json(...)` of the
  same files, which reads every byte once and builds nothing;
- pandas: what the pipelines this platform replaces do (read each file into
  a DataFrame, clean it row by row in Python, write CSV, load the CSV into
  the warehouse), written the way they write it, without analytics.

Each case is its own process (`--case`), timed from outside with its peak
RSS (the process tree's, sampled), so no case pays for another's memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from _common import (
    Landed,
    emit_rate,
    fresh,
    land,
    landed_folder,
    measured,
    platform_build,
    repeats_again,
)

RAW_COLUMNS = ("event_time", "user_id", "event_type", "transaction_category", "miles_amount",
               "platform", "utm_source", "country", "gender")  # fmt: skip
KNOWN_EVENT_TYPES = {"miles_earned", "miles_redeemed", "reward_search", "share", "like"}
# `make bench` stops the pandas case after this many seconds at full scale (its speed is the same over
# part of the files as over all of them, one file at a time): at 10M events it would take 5 to 9 minutes
# of the half hour. Unset, it runs to the end.
PANDAS_SECONDS = float(os.environ.get("BENCH_PANDAS_SECONDS") or 0)


def case_limit(files: list[Path], warehouse: Path) -> None:
    import duckdb

    with duckdb.connect(str(warehouse)) as con:
        listed = ", ".join(f"'{f}'" for f in files)
        # The raw table's columns, as text (as the platform's raw table keeps them): nothing to infer.
        columns = "{" + ", ".join(f"{c}: 'VARCHAR'" for c in RAW_COLUMNS) + "}"
        con.execute(
            f"create table events as select * from read_json([{listed}],"
            f" format = 'newline_delimited', columns = {columns})"
        )


def clean_row(row: dict[str, object]) -> dict[str, object] | None:
    """One event, checked and typed the way the old pipelines' `clean()` functions do it."""
    try:
        event_time = dt.datetime.fromisoformat(str(row["event_time"]))
    except (KeyError, TypeError, ValueError):
        return None
    user_id = row.get("user_id")
    event_type = str(row.get("event_type") or "").strip().lower()
    if not user_id or event_type not in KNOWN_EVENT_TYPES:
        return None
    miles = row.get("miles_amount")
    try:
        miles_amount = None if miles is None or miles == "" or miles != miles else float(miles)  # NaN
    except (TypeError, ValueError):
        return None
    if miles_amount is not None and miles_amount < 0:
        return None

    def text(name: str) -> object:
        value = row.get(name)
        return None if value is None or value != value else str(value).strip()

    return {
        "event_time": event_time.isoformat(sep=" "),
        "user_id": str(user_id),
        "event_type": event_type,
        "transaction_category": text("transaction_category"),
        "miles_amount": miles_amount,
        "platform": text("platform"),
        "utm_source": text("utm_source"),
        "country": text("country"),
    }


def case_pandas(files: list[Path], warehouse: Path, deadline: float | None = None) -> None:
    """The old way over every file, or, past `deadline` seconds, over the files it got through.

    Files are processed one at a time, so its speed does not change with the
    number of files: stopped early, it loads what it cleaned and says how many
    events that was, and its events per second stand for the whole run.
    """
    import time

    import duckdb
    import pandas as pd

    started = time.monotonic()
    csv = warehouse.with_suffix(".csv")
    header = True
    done = 0
    with csv.open("w", encoding="utf-8", newline="") as out:
        for path in files:
            frame = pd.read_json(path, lines=True, compression="gzip", dtype=False)
            cleaned = [c for c in (clean_row(r) for r in frame.to_dict("records")) if c is not None]
            pd.DataFrame(cleaned).to_csv(out, index=False, header=header)
            header = False
            done += len(frame)
            if deadline is not None and time.monotonic() - started > deadline:
                break
    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"create table events as select * from read_csv('{csv}', header = true)")
    csv.unlink()
    warehouse.with_suffix(".events").write_text(str(done))


def bench_size(events: int, days: int, reps: int, workdir: Path, cases: list[str], pandas_limit: int) -> None:
    landed = land(events, days, workdir)
    rows, group = landed.rows, f"N={events:,}"
    print(f"    {group}: {rows:,} events landed in {len(landed.files)} files, {landed.bytes / 1e6:.0f} MB",
          file=sys.stderr)  # fmt: skip
    listing = workdir / "files.json"
    listing.write_text(json.dumps([str(f) for f in landed.files]))
    me = [sys.executable, __file__, "--files", str(listing)]
    finished: set[str] = set()  # cases too long to repeat (see REPEAT_UNDER)
    for rep in range(reps):
        # Cases take turns within a repetition, so a slow drift of the machine hits each alike.
        for case in (c for c in cases if c not in finished):
            seconds = measure_case(case, rep, group, landed, workdir, me, pandas_limit)
            if not repeats_again(seconds):
                finished.add(case)


def measure_case(
    case: str, rep: int, group: str, landed: Landed, workdir: Path, me: list[str], pandas_limit: int
) -> float | None:
    """One repetition of one case; its seconds (None when it failed or did not run)."""
    rows = landed.rows
    common = {"rep": rep, "landed_bytes": landed.bytes}
    if case == "limit":
        warehouse = fresh(workdir / "limit.duckdb")
        seconds, peak, code = measured([*me, "--case", "limit", "--warehouse", str(warehouse)])
        elapsed = seconds if code == 0 else None
        emit_rate("P1", group, "DuckDB limit: one CTAS over read_json", rows, elapsed, baseline=True,
                  peak_rss=peak, **common)  # fmt: skip
        return elapsed
    if case == "pandas":
        name = "pandas: read, clean row by row, CSV, load"
        if rows > pandas_limit:
            note = f"not run above {pandas_limit:,} events"
            emit_rate("P1", group, name, rows, None, baseline=True, note=note, **common)
            return None
        warehouse = fresh(workdir / "pandas.duckdb")
        deadline = ["--deadline", str(PANDAS_SECONDS)] if PANDAS_SECONDS else []
        seconds, peak, code = measured([*me, "--case", "pandas", "--warehouse", str(warehouse), *deadline])
        note = "" if code == 0 else ("out of memory" if code in (-9, 137) else f"failed ({code})")
        elapsed = seconds if code == 0 else None
        done = int(warehouse.with_suffix(".events").read_text()) if code == 0 else rows
        if done < rows:
            note = f"stopped after {PANDAS_SECONDS:.0f} s: {done:,} of the {rows:,} events"
        emit_rate("P1", group, name, done, elapsed, baseline=True, peak_rss=peak, note=note, **common)
        return elapsed
    run = platform_build(landed, workdir, rep)
    emit_rate("P1", group, "platform: load + dbt build (all analytics)", rows, run.seconds,
              load_seconds=run.load_seconds, dbt_seconds=run.dbt_seconds,
              dbt_work_seconds=run.dbt_work_seconds, load_peak_rss=run.load_peak_rss,
              dbt_peak_rss=run.dbt_peak_rss, **common)  # fmt: skip
    return run.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated event counts")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--cases", default="limit,pandas,platform")
    # The landed "10M" holds 11M events (the generator's count is approximate): pandas runs at both sizes.
    parser.add_argument("--pandas-limit", type=int, default=20_000_000)
    parser.add_argument("--prepare", action="store_true", help="only generate and land the data, then exit")
    parser.add_argument("--workdir", type=Path, default=None, help="keep landed data here between runs")
    parser.add_argument("--case", choices=["limit", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--files", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--warehouse", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        files = [Path(f) for f in json.loads(args.files.read_text())]
        if args.case == "pandas":
            case_pandas(files, args.warehouse, args.deadline)
        else:
            case_limit(files, args.warehouse)
        return
    base = args.workdir or Path(tempfile.mkdtemp(prefix="bench-p1-"))
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            folder = landed_folder(base, size, args.days)
            if args.prepare:
                land(size, args.days, folder)
                continue
            bench_size(size, args.days, args.reps, folder, args.cases.split(","), args.pandas_limit)
    finally:
        if args.workdir is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
