"""The whole pipeline through a real Airflow DAG run, checked layer by layer.

It runs `tools/demo.sh`, the same script `make demo` runs, on a small
generated stream in a throwaway folder, then reads the warehouse it built.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from conftest import Demo

# The checks a consumer of the public data relies on, shared with dbt-repo's own tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dbt-repo" / "python_tests"))
from publication_checks import check_publication

pytestmark = pytest.mark.e2e  # runs the pipeline: DAG runs, the stack, containers

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_EXPORT = Path(
    os.environ.get("HEYMAX_SAMPLE", ROOT.parent / "shared" / "datasets" / "heymax_event_stream.csv")
)


def run_demo(demo_dir: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEMO_DIR": str(demo_dir), **settings}
    result = subprocess.run(
        [str(ROOT / "tools" / "demo.sh")], env=env, capture_output=True, text=True, timeout=1500
    )
    assert result.returncode == 0, f"demo failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def layer_counts(db: Path) -> dict[str, int]:
    tables = {
        "raw": "raw.events",
        "quarantine": "raw.events_quarantine",
        "staging": "staging.stg_events",
        "fct": "core.fct_events",
        "dim": "core.dim_users",
    }
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            name: con.execute(f"select count(*) from {table}").fetchone()[0] for name, table in tables.items()
        }


def assert_growth_identities(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        weeks = con.execute(
            "select period_start, active_users, new_users, retained_users, resurrected_users, churned_users "
            "from analytics.growth_accounting_weekly order by period_start"
        ).fetchall()
        users = con.execute("select count(*) from core.dim_users").fetchone()[0]
    assert weeks
    for period_start, active, new, retained, resurrected, _ in weeks:
        assert period_start.weekday() == 0
        assert active == new + retained + resurrected, period_start
    for previous, current in itertools.pairwise(weeks):
        assert previous[1] == current[3] + current[5], current[0]  # last active = retained + churned
    assert sum(w[2] for w in weeks) == users
    return weeks


def test_generated_stream_through_a_real_dag_run(generated_demo: Demo) -> None:
    demo, stdout = generated_demo.folder, generated_demo.stdout
    db = demo / "warehouse.duckdb"

    with duckdb.connect() as con:
        generated, users = con.execute(
            f"select count(*), count(distinct user_id) from '{demo / 'events.parquet'}'"
        ).fetchone()
    counts = layer_counts(db)
    assert counts == {"raw": generated, "quarantine": 0, "staging": generated, "fct": generated, "dim": users}

    # Every day landed with a manifest, and the loads reconcile with them.
    manifests = sorted((demo / "bucket" / "raw" / "events").glob("dt=*/_manifest.json"))
    assert len(manifests) == 28
    assert sum(json.loads(m.read_text())["row_count"] for m in manifests) == generated

    weeks = assert_growth_identities(db)
    assert len(weeks) == 4
    assert "DAG run state: events_ingest success" in stdout
    assert "DAG run state: dbt_transform success" in stdout
    assert "freshness of raw.events" in (demo / "logs" / "dbt_transform.log").read_text()  # checked first
    assert "dbt tests passed" in stdout and (demo / "dashboard" / "index.html").is_file()
    # The run_results.json of each task that ran dbt, kept by the Cosmos callback (locally, the one
    # build of watcher mode): every model built, every test passed (the exposure is nothing to run).
    statuses: dict[str, str] = {}
    for path in sorted((demo / "dbt-artifacts" / "dbt_transform").rglob("run_results.json")):
        statuses.update({r["unique_id"]: r["status"] for r in json.loads(path.read_text())["results"]})
    by_kind: dict[str, set[str]] = {}
    for unique_id, status in statuses.items():
        by_kind.setdefault(unique_id.split(".")[0], set()).add(status)
    assert by_kind.pop("exposure", {"no-op"}) == {"no-op"}
    assert by_kind == {"model": {"success"}, "test": {"pass"}}
    models = [u for u in statuses if u.startswith("model.")]
    assert len(models) >= 11
    # What BI tools read: the analytics tables, copied after their tests passed, equal to the build's.
    with duckdb.connect() as con:
        con.execute(f"attach '{db}' as built (read_only)")
        con.execute(f"attach '{demo / 'warehouse-readers.duckdb'}' as readers (read_only)")
        tables = [t for (t,) in con.execute(
            "select table_name from information_schema.tables"
            " where table_catalog = 'built' and table_schema = 'analytics'"
        ).fetchall()]  # fmt: skip
        assert len(tables) >= 8
        for table in tables:
            built, readers = f"built.analytics.{table}", f"readers.analytics.{table}"
            differs = con.execute(
                f"select count(*) from ((from {built} except all from {readers})"
                f" union all (from {readers} except all from {built}))"
            ).fetchone()
            assert differs == (0,), table
    # The run published the docs and the public data: every exported number is the warehouse's.
    assert (demo / "docs" / "index.html").is_file() and (demo / "docs" / "catalog.json").is_file()
    v1 = demo / "data" / "v1"
    with duckdb.connect(str(db), read_only=True) as con:
        catalog = check_publication(lambda path: (v1 / path).read_bytes(), con)
    assert len(catalog["datasets"]) >= 8 and sum(d["rows"] for d in catalog["datasets"]) > 0


def dirty_export(sample: Path, out: Path) -> dict[str, int]:
    """The public sample with what real exports carry, each kind on days of its own.

    Five rows each get an empty user id, an unknown event type or a
    non-numeric miles amount (the load quarantines them, day by day); five
    rows without a usable event time are added (the extract quarantines
    them: they have no day); ten rows are delivered twice. Returns the counts
    a run must reconcile to.
    """
    with sample.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    by_day: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_day.setdefault(row["event_time"][:10], []).append(i)
    # Busy days only: one spoiled row must stay under the 5% per-day threshold (the first days are small).
    days = sorted(day for day, indices in by_day.items() if len(indices) >= 60)
    spoiled = 0
    for n, (column, value) in enumerate(
        [("user_id", "")] * 5 + [("event_type", "superlike")] * 5 + [("miles_amount", "12,5 miles")] * 5
    ):
        # One spoiled row per day, on different days.
        day = days[(n * 3) % len(days)]
        candidates = [
            i for i in by_day[day] if column != "miles_amount" or rows[i]["event_type"] == "miles_earned"
        ]
        rows[candidates[0]][column] = value
        spoiled += 1
    duplicates = [dict(rows[by_day[day][-1]]) for i, day in enumerate(days[:20]) if i % 3][:10]
    undatable = [
        dict(rows[0], event_time=t) for t in ("", "2025-13-45 10:00:00", "not a time", "25/03/2025", "  ")
    ]
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        writer.writerows(rows[:50] + undatable + rows[50:] + duplicates)
    return {
        "records": len(rows) + len(undatable) + len(duplicates),
        "spoiled": spoiled,
        "undatable": len(undatable),
        "duplicates": len(duplicates),
        "good": len(rows) - spoiled,
    }


def _require_sample() -> None:
    if not SAMPLE_EXPORT.is_file():
        message = f"the public sample export is missing at {SAMPLE_EXPORT}"
        # Only an explicit HEYMAX_SAMPLE=none may skip in CI (e.g. a fork without the file).
        if os.environ.get("CI") and os.environ.get("HEYMAX_SAMPLE") != "none":
            pytest.fail(message)
        pytest.skip(message)


def test_a_dirty_export_loads_every_good_row_once_and_quarantines_the_rest(tmp_path: Path) -> None:
    _require_sample()
    export = tmp_path / "dirty export.csv"
    expected = dirty_export(SAMPLE_EXPORT, export)
    demo = tmp_path / "demo"
    result = run_demo(demo, EVENTS_CSV=str(export))
    db = demo / "warehouse.duckdb"
    counts = layer_counts(db)
    # Loaded once: every good row is one event; the duplicate deliveries reach raw but not fct_events.
    assert counts["fct"] == expected["good"]
    assert counts["raw"] == expected["good"] + expected["duplicates"]
    # Quarantined with a reason, all in the warehouse: the load's, and the extract's (no day), which the
    # load of the file's first day copied in.
    with duckdb.connect(str(db), read_only=True) as con:
        reasons = dict(
            con.execute("select reason, count(*) from raw.events_quarantine group by 1").fetchall()
        )
    assert reasons == {
        "missing_user_id": 5,
        "unknown_event_type": 5,
        "non_numeric_miles_amount": 5,
        "missing_event_time": 2,
        "unparseable_event_time": 3,
    }
    assert "missing_event_time" in result.stdout and "unparseable_event_time" in result.stdout
    # Reconciled against the file: every record is loaded or quarantined, none twice.
    assert counts["raw"] + counts["quarantine"] == expected["records"]
    assert (
        f"Records: {expected['records']:,} in the source" in result.stdout and "reconciled" in result.stdout
    )
    assert_growth_identities(db)


def test_an_export_over_the_threshold_fails_and_says_which_with_the_numbers(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    good = [f"2025-03-0{1 + i % 5} 10:{i % 60:02d}:00,u_{i % 7},like,,web,organic,SG" for i in range(80)]
    bad = [f"someday,u_{i},like,,web,organic,SG" for i in range(20)]
    header = "event_time,user_id,event_type,miles_amount,platform,utm_source,country"
    export.write_text("\n".join([header, *good, *bad]) + "\n")
    env = {**os.environ, "DEMO_DIR": str(tmp_path / "demo"), "EVENTS_CSV": str(export)}
    result = subprocess.run(
        [str(ROOT / "tools" / "demo.sh")], env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode != 0
    assert (
        "20 of 100 records (20.0%) would be quarantined, over the 5.0% threshold for the file as a whole"
        in (result.stdout + result.stderr)
    )


def test_the_public_sample_export_through_a_real_dag_run(tmp_path: Path) -> None:
    _require_sample()
    demo = tmp_path / "demo"
    run_demo(demo, EVENTS_CSV=str(SAMPLE_EXPORT))
    counts = layer_counts(demo / "warehouse.duckdb")
    assert counts["raw"] + counts["quarantine"] == 10_000
    assert counts["quarantine"] == 0 and counts["fct"] == 10_000 and counts["dim"] == 100
    assert_growth_identities(demo / "warehouse.duckdb")
