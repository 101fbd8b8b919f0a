from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path

from conftest import BUILD, fixture_rows, insert_raw, query, raw_row


def test_build_passes_and_layers_reconcile(warehouse: Path, dbt) -> None:
    rows = fixture_rows()
    duplicate = rows[0]
    messy = raw_row(
        dt.datetime(2025, 1, 7, 9),
        " u_900 ",
        0,
        event_type=" Miles_Earned",
        platform="IOS",
        country="sg",
        gender="Female",
    )
    insert_raw(warehouse, [*rows, duplicate, messy])

    result = dbt(*BUILD)
    assert result.returncode == 0, result.stdout[-3000:]

    distinct = len({json.dumps(r, sort_keys=True) for r in rows}) + 1
    assert query(warehouse, "select count(*) from staging.stg_events") == [(distinct,)]
    assert query(warehouse, "select count(*) from core.fct_events") == [(distinct,)]
    users = len({r["user_id"] for r in rows}) + 1
    assert query(warehouse, "select count(*) from core.dim_users") == [(users,)]
    assert query(
        warehouse,
        "select user_id, event_type, platform, country, gender "
        "from staging.stg_events where user_id = 'u_900'",
    ) == [("u_900", "miles_earned", "ios", "SG", "female")]

    weeks = query(
        warehouse,
        "select period_start, active_users, new_users, retained_users, resurrected_users, churned_users "
        "from analytics.growth_accounting_weekly order by period_start",
    )
    assert len(weeks) == 6 and all(w[0].weekday() == 0 for w in weeks)
    for previous, current in itertools.pairwise(weeks):
        assert current[1] == current[2] + current[3] + current[4]
        assert previous[1] == current[3] + current[5]
    assert sum(w[2] for w in weeks) == users  # every user is new exactly once


def test_incremental_rerun_is_idempotent_and_takes_late_events(warehouse: Path, dbt) -> None:
    insert_raw(warehouse, fixture_rows())
    assert dbt(*BUILD).returncode == 0
    before = query(warehouse, "select count(*) from core.fct_events")[0][0]
    assert dbt(*BUILD).returncode == 0
    assert query(warehouse, "select count(*) from core.fct_events") == [(before,)]

    # Two late events, loaded a week after the others: one from yesterday, one from a month ago.
    newest = query(warehouse, "select max(event_date) from core.fct_events")[0][0]
    yesterday = newest - dt.timedelta(days=1)
    month_ago = newest - dt.timedelta(days=30)
    late = [
        raw_row(dt.datetime.combine(yesterday, dt.time(8)), "u_late", 1),
        raw_row(dt.datetime.combine(month_ago, dt.time(8)), "u_very_late", 1),
    ]
    insert_raw(warehouse, late, loaded_at=dt.datetime(2025, 3, 8))
    result = dbt(*BUILD)
    assert result.returncode == 0, result.stdout[-3000:]
    assert query(warehouse, "select count(*) from core.fct_events") == [(before + 2,)]
    assert query(
        warehouse, "select user_id, event_date from core.fct_events where user_id like 'u_%late' order by 1"
    ) == [("u_late", yesterday), ("u_very_late", month_ago)]


def test_a_failing_test_stops_what_is_downstream(warehouse: Path, dbt) -> None:
    insert_raw(warehouse, [*fixture_rows(), raw_row(dt.datetime(2025, 1, 8), "u_bad", 0, miles_amount="-5")])
    result = dbt(*BUILD)
    assert result.returncode != 0
    results = json.loads((Path(warehouse).parent / "target" / "run_results.json").read_text())
    status = {r["unique_id"].split(".")[2]: r["status"] for r in results["results"]}
    failed = [name for name, s in status.items() if s == "fail"]
    assert any(name.startswith("expression_is_true_stg_events") for name in failed)
    assert status["fct_events"] == "skipped"
    assert query(
        warehouse, "select count(*) from information_schema.tables where table_name = 'fct_events'"
    ) == [(0,)]


def test_bigquery_target_parses_offline(dbt) -> None:
    result = dbt("parse", target="bigquery", extra_env={"DBT_BIGQUERY_PROJECT": "example-project"})
    assert result.returncode == 0, result.stdout[-3000:]


def test_unit_tests_pass(warehouse: Path, dbt) -> None:
    # Unit tests read their inputs' column types from the warehouse, and an
    # incremental model's `this` must exist: create every relation empty first.
    empty = dbt("run", "--empty")
    assert empty.returncode == 0, empty.stdout[-3000:]
    result = dbt("test", "--select", "test_type:unit")
    assert result.returncode == 0, result.stdout[-3000:]
    results = json.loads((Path(warehouse).parent / "target" / "run_results.json").read_text())
    statuses = [r["status"] for r in results["results"]]
    assert len(statuses) >= 13 and set(statuses) == {"pass"}
