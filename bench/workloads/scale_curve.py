"""P3: how the platform's full build grows with the data, in time and memory.

Runs in the dbt-repo environment. For each size (1M, 5M and 25M generated
events over 90 days, landed once per size), each repetition builds from an
empty warehouse through the platform's own path (`extract-load load` of
every day, then `dbt build` of every model and data test) and records its
wall time and the peak RSS of each process tree (the loader's and dbt's,
sampled). Reported per size: events per second against the smallest size
(1.0x is linear), peak RSS in MiB, and per repetition the exponent k of
time ~ events^k fitted by least squares on the logarithms (1.0 is linear).
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
from pathlib import Path

from _common import emit, emit_rate, fresh, land, landed_folder, next_day, run_platform


def fitted_exponent(points: list[tuple[int, float]]) -> float:
    """Slope of log(seconds) against log(events), least squares."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(t) for _, t in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return covariance / sum((x - mean_x) ** 2 for x in xs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--sizes", default="1000000,5000000,25000000", help="comma-separated event counts")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--workdir", type=Path, default=None, help="keep landed data here between runs")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    base = args.workdir or Path(tempfile.mkdtemp(prefix="bench-p3-"))
    try:
        landed = {}
        for size in sizes:
            landed[size] = land(size, args.days, landed_folder(base, size, args.days))
            print(f"    {size:,}: {landed[size].rows:,} events landed", file=sys.stderr)
        smallest = sizes[0]
        for rep in range(args.reps):
            points = []
            for size in sizes:
                data, folder = landed[size], landed_folder(base, size, args.days)
                warehouse = fresh(folder / "scale.duckdb")
                run = run_platform(data.bucket, warehouse, data.days[0], next_day(data.days[-1]), folder)
                points.append((data.rows, run.seconds))
                emit_rate("P3", "scale curve: load + dbt build", f"N={size:,}", data.rows, run.seconds,
                          baseline=size == smallest, rep=rep, load_seconds=run.load_seconds,
                          dbt_seconds=run.dbt_seconds, peak_rss=run.peak_rss)  # fmt: skip
                for process, peak in (("loader", run.load_peak_rss), ("dbt", run.dbt_peak_rss)):
                    emit("P3", "peak RSS of each process tree", f"N={size:,}: {process}", peak / 2**20, "MiB",
                         lower_is_better=True, rep=rep,
                         note="target under 2048 at 25M" if size == sizes[-1] else "")  # fmt: skip
            emit("P3", "time exponent", "k in seconds ~ events^k, fitted", fitted_exponent(points), "k",
                 lower_is_better=True, rep=rep, note="target at most 1.1")  # fmt: skip
    finally:
        if args.workdir is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
