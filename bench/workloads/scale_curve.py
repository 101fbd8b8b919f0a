"""P3: how the platform's full build grows with the data, in time and memory.

Runs in the dbt-repo environment. For each size (1M, 5M and 25M generated
events over 90 days, landed once per size; `make bench` adds P1's 10M, whose
builds it measured already), each repetition builds from an empty warehouse
through the platform's own path (`extract-load load` of every day, then
`dbt build` of every model and data test) and records its wall time and the
peak RSS of each process tree (the loader's and dbt's, sampled). Reported per
size: events per second against the smallest size (1.0x is linear), peak RSS
in MiB, and the exponent k of time ~ events^k fitted by least squares on the
logarithms of each size's median (1.0 is linear).
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from _common import emit, emit_rate, land, landed_folder, platform_build, repeats_again


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
    parser.add_argument("--prepare", action="store_true", help="only generate and land the data, then exit")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    base = args.workdir or Path(tempfile.mkdtemp(prefix="bench-p3-"))
    try:
        landed = {}
        # Largest first: preparing side by side with the other workloads, the longest job starts first.
        for size in reversed(sizes):
            landed[size] = land(size, args.days, landed_folder(base, size, args.days))
            print(f"    {size:,}: {landed[size].rows:,} events landed", file=sys.stderr)
        if args.prepare:
            return
        smallest, largest = sizes[0], sizes[-1]
        seconds: dict[int, list[float]] = {size: [] for size in sizes}
        finished: set[int] = set()  # sizes too long to repeat (see REPEAT_UNDER)
        for rep in range(args.reps):
            for size in (s for s in sizes if s not in finished):
                data = landed[size]
                run = platform_build(data, landed_folder(base, size, args.days), rep)
                seconds[size].append(run.seconds)
                if not repeats_again(run.seconds):
                    finished.add(size)
                emit_rate("P3", "scale curve: load + dbt build", f"N={size:,}", data.rows, run.seconds,
                          baseline=size == smallest, rep=rep, load_seconds=run.load_seconds,
                          dbt_seconds=run.dbt_seconds, peak_rss=run.peak_rss)  # fmt: skip
                for process, peak in (("loader", run.load_peak_rss), ("dbt", run.dbt_peak_rss)):
                    emit("P3", "peak RSS of each process tree", f"N={size:,}: {process}", peak / 2**20, "MiB",
                         lower_is_better=True, rep=rep,
                         note="target under 2048 at 25M" if size == largest else "")  # fmt: skip
        # Fitted on each size's median: sizes may have different numbers of repetitions.
        points = [(landed[size].rows, statistics.median(seconds[size])) for size in sizes]
        emit("P3", "time exponent", f"k in seconds ~ events^k, fitted over N={smallest:,} to {largest:,}",
             fitted_exponent(points), "k", lower_is_better=True, note="target at most 1.1")  # fmt: skip
        if len(points) > 2:
            # Start-up costs flatten the curve at the small end; the two largest sizes show the growth.
            emit("P3", "time exponent", f"k between the two largest sizes, N={sizes[-2]:,} and {largest:,}",
                 fitted_exponent(points[-2:]), "k", lower_is_better=True)  # fmt: skip
    finally:
        if args.workdir is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
