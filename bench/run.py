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
import platform
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = {
    "P4": (
        "scripts-repo",
        "bench/workloads/extract_throughput.py",
        "extract throughput: events API and Kafka into the bucket",
    ),
}


def run_workload(name: str, reps: int, extra: list[str]) -> list[dict[str, object]]:
    project, script, title = WORKLOADS[name]
    python = ROOT / project / ".venv" / "bin" / "python"
    print(f"==> {name}: {title}", file=sys.stderr, flush=True)
    process = subprocess.run(
        [str(python), str(ROOT / script), "--reps", str(reps), *extra],
        cwd=ROOT / project,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
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
    baselines = {(s["bench"], s["group"]): s["median"] for s in summary if s["baseline"]}
    for s in summary:
        base = baselines.get((s["bench"], s["group"]))
        s["ratio"] = s["median"] / base if base and s["median"] is not None else None
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
        ratio = "baseline" if s["baseline"] else (f"{s['ratio']:.2f}x" if s["ratio"] is not None else "-")
        lines.append(
            f"| {s['bench']} | {s['group']} | {s['case']} | {_fmt(s['median'])} | "
            f"{_fmt(s['min'])} - {_fmt(s['max'])} | {s['unit']} | {ratio} | {s['runs']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", choices=sorted(WORKLOADS), default=sorted(WORKLOADS))
    parser.add_argument("--reps", type=int, default=3, help="Repetitions per case (medians need 3+).")
    parser.add_argument("--quick", action="store_true", help="Small sizes, to check the harness itself.")
    args = parser.parse_args()
    extra = ["--events", "20000", "--kafka-events", "20000"] if args.quick else []
    rows = [row for name in args.only for row in run_workload(name, args.reps, extra)]
    summary = summarise(rows)
    print(table(summary))
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = results / f"{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "started": stamp,
                "machine": {"cpus": __import__("os").cpu_count(), "platform": platform.platform()},
                "summary": summary,
                "runs": rows,
            },
            indent=2,
        )
    )
    print(f"\nresults: {out.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
