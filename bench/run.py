"""`make bench`: run the workloads, then print medians, min-max and ratios to each baseline.

Every workload is a script that runs in the environment of the subproject it
measures and prints one JSON line per repetition:
`{"bench", "group", "case", "baseline", "value", "unit", ...}`. Within a group,
one case is the baseline measured in the same run, and every other case is
stated as a ratio against it, because absolute numbers on a shared 2-core
machine say little on their own. Nothing here asserts a time: the targets
are printed beside the results for a person to judge.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = {
    "P1": (
        "dbt-repo",
        "bench/workloads/full_build.py",
        "full build: landed files -> every analytics table, vs the DuckDB limit and pandas",
    ),
    "P2": (
        "dbt-repo",
        "bench/workloads/incremental_day.py",
        "incremental day: one more day on a year of history vs a full build, and on a month vs a year",
    ),
    "P3": (
        "dbt-repo",
        "bench/workloads/scale_curve.py",
        "scale curve: full build at 1M, 5M and 25M events, time, peak RSS and the fitted exponent",
    ),
    "P4": (
        "scripts-repo",
        "bench/workloads/extract_throughput.py",
        "extract throughput: events API and Kafka into the bucket",
    ),
    "P5": (
        "airflow-repo",
        "bench/workloads/airflow_overhead.py",
        "Airflow overhead: DAG parse time per file, one daily interval through `airflow dags test`",
    ),
}


# Each workload's arguments per scale.
SCALES = {
    "P1": {"full": ["--sizes", "1000000,10000000"], "small": ["--sizes", "100000", "--days", "30"]},
    "P2": {
        "full": ["--events", "25000000", "--days", "365", "--month-days", "30"],
        "small": ["--events", "200000", "--days", "60", "--month-days", "14"],
    },
    "P3": {
        # 1M and 10M are P1's builds, measured once for both.
        "full": ["--sizes", "1000000,5000000,10000000,25000000"],
        "small": ["--sizes", "100000,200000,400000", "--days", "30"],
    },
    "P4": {
        "full": ["--events", "100000", "--kafka-events", "30000"],
        "small": ["--events", "20000", "--kafka-events", "20000"],
    },
    # A daily interval through Airflow takes two minutes whatever its size: once in a quick run.
    "P5": {"full": ["--events", "20000"], "small": ["--events", "5000", "--day-reps", "1"]},
}


# Workloads that land generated events keep them in one folder for the run, so a size two of them use
# (P1's and P3's 1M) is generated and landed once.
SHARES_LANDED_DATA = {"P1", "P2", "P3", "P5"}
# Workloads whose data is prepared (`--prepare`: generated, landed, P2's history built) before anything
# is measured, two sizes at a time, the largest first. Nothing is timed then, so they may share the cores.
PREPARED = ("P3", "P1", "P2")
# At full scale a case whose first repetition takes longer than this runs once (the table's `runs`
# says so), which keeps `make bench` within half an hour on 2 cores.
REPEAT_UNDER = {"full": 45.0, "small": float("inf")}
# At full scale the pandas baseline stops after this many seconds and is measured over the files it got
# through (one file at a time, its speed does not depend on how many): at 10M events it would take 5 to
# 9 minutes, a third of the budget, for the same events per second.
PANDAS_SECONDS = {"full": 120.0, "small": 0.0}


def prepare_jobs(names: list[str], scale: str) -> list[tuple[str, list[str]]]:
    """One job per workload and size, the largest first: two workers then finish close together."""
    jobs = []
    for name in (n for n in PREPARED if n in names):
        args = SCALES[name][scale]
        if "--sizes" in args:
            at = args.index("--sizes") + 1
            jobs += [(name, [*args[:at], size, *args[at + 1 :]]) for size in args[at].split(",")]
        else:
            jobs.append((name, args))

    def events(job: tuple[str, list[str]]) -> int:
        args = job[1]
        flag = "--sizes" if "--sizes" in args else "--events"
        return int(args[args.index(flag) + 1]) if flag in args else 0

    # A size two workloads share is landed once (a lock per folder): the second job finds it there.
    return sorted(jobs, key=events, reverse=True)


def prepare(names: list[str], scale: str, workdir: Path) -> None:
    jobs = prepare_jobs(names, scale)
    print(f"==> preparing data for {len(jobs)} workload sizes (not timed)", file=sys.stderr, flush=True)

    def one(job: tuple[str, list[str]]) -> None:
        project, script, _ = WORKLOADS[job[0]]
        subprocess.run(
            [str(ROOT / project / ".venv" / "bin" / "python"), str(ROOT / script), *job[1],
             "--workdir", str(workdir), "--prepare"],
            cwd=ROOT / project, stdout=subprocess.DEVNULL, check=True,
        )  # fmt: skip

    with ThreadPoolExecutor(max_workers=2) as pool:
        for done in [pool.submit(one, job) for job in jobs]:
            done.result()


def run_workload(name: str, reps: int, extra: list[str], workdir: Path) -> list[dict[str, object]]:
    project, script, title = WORKLOADS[name]
    if name in SHARES_LANDED_DATA:
        extra = [*extra, "--workdir", str(workdir)]
    python = ROOT / project / ".venv" / "bin" / "python"
    print(f"==> {name}: {title}", file=sys.stderr, flush=True)
    started = time.monotonic()
    process = subprocess.run(
        [str(python), str(ROOT / script), "--reps", str(reps), *extra],
        cwd=ROOT / project,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    print(f"    {name} took {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return [json.loads(line) for line in process.stdout.splitlines() if line.startswith("{")]


def summarise(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    cases: dict[tuple[str, str, str], list[dict[str, object]]] = defaultdict(list)
    for row in rows:
        cases[(str(row["bench"]), str(row["group"]), str(row["case"]))].append(row)
    summary = []
    for (bench, group, case), runs in cases.items():
        values = [float(r["value"]) for r in runs if r.get("value") is not None]  # type: ignore[arg-type]
        first = runs[0]
        summary.append(
            {
                "bench": bench,
                "group": group,
                "case": case,
                "baseline": bool(first.get("baseline")),
                "unit": first["unit"],
                "lower_is_better": bool(first.get("lower_is_better")),
                "runs": len(values),
                "median": statistics.median(values) if values else None,
                "min": min(values) if values else None,
                "max": max(values) if values else None,
                "note": first.get("note", ""),
            }
        )
    # A group may have several baselines (P1: the hardware's limit and the old way): one ratio each.
    baselines: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
    for s in summary:
        if s["baseline"] and s["median"]:
            baselines[(s["bench"], s["group"])].append((str(s["case"]).split(":")[0], float(s["median"])))
    for s in summary:
        s["ratios"] = {
            name: s["median"] / base
            for name, base in baselines.get((s["bench"], s["group"]), [])
            if s["median"] is not None and not s["baseline"]
        }
    return summary


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    number = float(value)  # type: ignore[arg-type]
    if abs(number) >= 1000:
        return f"{number:,.0f}"
    return f"{number:.3g}"


def table(summary: list[dict[str, object]]) -> str:
    lines = [
        "| bench | group | case | median | min - max | unit | ratio to baseline | runs |",
        "|---|---|---|---:|---:|---|---:|---:|",
    ]
    for s in summary:
        ratios = "; ".join(f"{r:.2f}x {name}" for name, r in s["ratios"].items()) or "-"
        ratio = "baseline" if s["baseline"] else ratios
        note = f" ({s['note']})" if s["note"] else ""
        lines.append(
            f"| {s['bench']} | {s['group']} | {s['case']}{note} | {_fmt(s['median'])} | "
            f"{_fmt(s['min'])} - {_fmt(s['max'])} | {s['unit']} | {ratio} | {s['runs']} |"
        )
    return "\n".join(lines)


def machine() -> dict[str, object]:
    memory = next(
        (int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()
         if line.startswith("MemTotal:")),
        None,
    )  # fmt: skip
    return {"cpus": os.cpu_count(), "memory_bytes": memory, "platform": platform.platform()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", choices=sorted(WORKLOADS), default=sorted(WORKLOADS))
    parser.add_argument("--reps", type=int, default=3, help="Repetitions per case (medians need 3+).")
    parser.add_argument(
        "--scale",
        choices=sorted(SCALES["P4"]),
        default=os.environ.get("BENCH_SCALE") or "full",
        help="full: the sizes the targets are stated at; small: a quick run (BENCH_SCALE=small)",
    )
    parser.add_argument("--quick", action="store_const", const="small", dest="scale", help="--scale small")
    parser.add_argument("--workdir", type=Path, help="keep landed data here (default: a temporary folder)")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-"))
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    os.environ["BENCH_RUN_ID"] = stamp
    os.environ.setdefault("BENCH_REPEAT_UNDER", str(REPEAT_UNDER[args.scale]))
    os.environ.setdefault("BENCH_PANDAS_SECONDS", str(PANDAS_SECONDS[args.scale]))
    started = time.monotonic()
    try:
        prepare(args.only, args.scale, workdir / args.scale)
        print(f"    prepared in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        rows = [
            row
            for name in args.only
            for row in run_workload(name, args.reps, SCALES[name][args.scale], workdir / args.scale)
        ]
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    summary = summarise(rows)
    info = machine()
    gib = int(info["memory_bytes"] or 0) / 2**30
    minutes = (time.monotonic() - started) / 60
    print(f"machine: {info['cpus']} cores, {gib:.1f} GiB, scale {args.scale}, {minutes:.1f} minutes\n")
    print(table(summary))
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    out = results / f"{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "started": stamp,
                "scale": args.scale,
                "minutes": minutes,
                "repeat_under_seconds": float(os.environ["BENCH_REPEAT_UNDER"]),
                "pandas_seconds": float(os.environ["BENCH_PANDAS_SECONDS"]),
                "machine": machine(),
                "summary": summary,
                "runs": rows,
            },
            indent=2,
        )
    )
    print(f"\nresults: {out.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
