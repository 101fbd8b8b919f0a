"""`demo-summary`: what a demo run produced, in a screenful."""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from pathlib import Path

from dashboard.warehouse import duckdb_path, read_snapshot


def dbt_outcomes(run_results: Path) -> Counter[str]:
    """Counts of (resource kind, status) from dbt's run_results.json."""
    data = json.loads(run_results.read_text())
    counts: Counter[str] = Counter()
    for result in data["results"]:
        kind = result["unique_id"].split(".")[0]
        counts[f"{kind}:{result['status']}"] += 1
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default_results = Path(os.environ.get("DBT_PROJECT_DIR", ".")) / "target" / "run_results.json"
    parser.add_argument("--run-results", type=Path, default=default_results)
    parser.add_argument("--dashboard", type=Path, default=None)
    args = parser.parse_args(argv)

    path = duckdb_path()
    snapshot = read_snapshot(path)
    outcomes = dbt_outcomes(args.run_results)
    tests_passed = outcomes["test:pass"] + outcomes["unit_test:pass"]
    tests_total = sum(v for k, v in outcomes.items() if k.startswith(("test:", "unit_test:")))

    print("\nRows per layer")
    for name, count in snapshot.layer_rows.items():
        print(f"  {name:<26} {count:>12,}")
    print(
        f"\ndbt tests passed: {tests_passed} of {tests_total}"
        f" (models built: {outcomes['model:success']}, warnings: {outcomes['test:warn']})"
    )
    print("\nGrowth accounting, last 4 weeks")
    header = ("week of", "active", "new", "retained", "resurrected", "churned", "quick ratio")
    print("  " + "".join(f"{h:>12}" for h in header))
    for week in snapshot.weekly[-4:]:
        ratio = week["quick_ratio"]
        cells = [
            str(week["period_start"]),
            *(
                f"{week[k]:,}"
                for k in ("active_users", "new_users", "retained_users", "resurrected_users", "churned_users")
            ),
        ]
        cells.append(f"{ratio:.2f}" if ratio is not None else "-")
        print("  " + "".join(f"{c:>12}" for c in cells))
    print(f"\nWarehouse: {path.resolve()}")
    if args.dashboard:
        print(f"Dashboard: {args.dashboard.resolve()}")


if __name__ == "__main__":
    main()
