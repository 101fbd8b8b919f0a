"""`demo-summary`: what a demo run produced, in a screenful."""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from pathlib import Path

from dashboard.warehouse import read_snapshot
from warehouses import Warehouse, from_environment


def run_results_files(paths: list[Path]) -> list[Path]:
    """run_results.json files given directly or found under folders (one per dbt task of a DAG run)."""
    found: list[Path] = []
    for path in paths:
        found.extend(sorted(path.rglob("run_results.json")) if path.is_dir() else [path])
    return found


def dbt_outcomes(run_results: Path | list[Path]) -> Counter[str]:
    """Counts of (resource kind, status) over dbt's run_results.json files, each node counted once.

    A node in several files (a model built, then read by a later task's
    test) counts with its last status.
    """
    latest: dict[str, str] = {}
    for path in run_results_files(run_results if isinstance(run_results, list) else [run_results]):
        for result in json.loads(path.read_text())["results"]:
            latest[result["unique_id"]] = result["status"]
    return Counter(f"{unique_id.split('.')[0]}:{status}" for unique_id, status in latest.items())


def quarantine_reasons(warehouse: Warehouse, source: str = "events") -> Counter[str]:
    """Quarantined records by reason, from `raw.<source>_quarantine`.

    Every stage's quarantine ends there: the load's own, and what an extract
    refused for having no day (copied in by the load of the day that owns it).
    """
    rows = warehouse.query(f"select reason, count(*) as n from raw.{source}_quarantine group by reason")
    return Counter({row["reason"]: int(row["n"]) for row in rows})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default_results = Path(os.environ.get("DBT_PROJECT_DIR", ".")) / "target" / "run_results.json"
    parser.add_argument(
        "--run-results",
        type=Path,
        nargs="+",
        default=[default_results],
        help="run_results.json files, or folders holding one per dbt task",
    )
    parser.add_argument("--dashboard", type=Path, default=None)
    parser.add_argument(
        "--source-records", type=int, default=None, help="records the source held: checked against the layers"
    )
    args = parser.parse_args(argv)

    warehouse = from_environment()
    snapshot = read_snapshot(warehouse)
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
    quarantined = quarantine_reasons(warehouse)
    total_quarantined = sum(quarantined.values())
    print(f"\nQuarantined: {total_quarantined:,}")
    for reason, count in sorted(quarantined.items()):
        print(f"  {reason:<30} {count:>8,}")
    if args.source_records is not None:
        accounted = snapshot.layer_rows["raw"] + total_quarantined
        verdict = "reconciled" if accounted == args.source_records else "DOES NOT RECONCILE"
        print(
            f"\nRecords: {args.source_records:,} in the source = {snapshot.layer_rows['raw']:,} loaded"
            f" + {total_quarantined:,} quarantined: {verdict}"
        )
    where = getattr(warehouse, "path", None)
    print(f"\nWarehouse: {where.resolve() if where else warehouse.target}")
    if args.dashboard:
        print(f"Dashboard: {args.dashboard.resolve()}")
    if args.source_records is not None and accounted != args.source_records:
        raise SystemExit(f"{args.source_records} records in the source, {accounted} loaded or quarantined")


if __name__ == "__main__":
    main()
