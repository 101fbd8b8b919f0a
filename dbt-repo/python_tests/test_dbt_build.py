from __future__ import annotations

import datetime as dt
import itertools
import json
import shutil
from pathlib import Path

import duckdb

from conftest import BUILD, Built, dbt_runner, fixture_rows, insert_raw, query, raw_row


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
    # Staging keeps every delivery; the fact table keeps each distinct record once.
    assert query(warehouse, "select count(*) from staging.stg_events") == [(len(rows) + 2,)]
    assert query(warehouse, "select count(*) from core.fct_events") == [(distinct,)]
    users = len({r["user_id"] for r in rows}) + 1
    assert query(warehouse, "select count(*) from core.dim_users") == [(users,)]
    assert query(
        warehouse,
        "select user_id, event_type, platform, country, gender from core.fct_events where user_id = 'u_900'",
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
    # The user-day table rebuilt only the touched days, and holds what a full rebuild would.
    rebuilt = query(warehouse, USER_DAYS_FROM_EVENTS)
    columns = (
        "user_id, activity_date, load_id, events, earn_events, redeem_events, miles_earned, miles_redeemed"
    )
    assert (
        query(warehouse, f"select {columns}, last_loaded_at from core.fct_user_days order by all") == rebuilt
    )
    assert ("u_very_late", month_ago) in {(r[0], r[1]) for r in rebuilt}


USER_DAYS_FROM_EVENTS = """
    select user_id, event_date, load_id, count(*),
        count(case when event_type = 'miles_earned' then 1 end),
        count(case when event_type = 'miles_redeemed' then 1 end),
        coalesce(sum(miles_earned), 0), coalesce(sum(miles_redeemed), 0), max(loaded_at)
    from core.fct_events group by all order by all
"""


def test_rolling_actives_equal_a_distinct_count_over_each_window(built_warehouse: Built) -> None:
    # The model counts users in linear time (stretches of coverage per active day);
    # this is the definition, counted the slow way for every day of the fixture.
    slow = query(
        built_warehouse.db,
        """
        select days.period_start,
            count(distinct case when e.event_date = days.period_start then e.user_id end),
            count(distinct case when e.event_date > days.period_start - 7 then e.user_id end),
            count(distinct case when e.event_date > days.period_start - 28 then e.user_id end),
            count(distinct e.user_id)
        from analytics.user_activity_daily as days
        left join core.fct_events as e
            on e.event_date <= days.period_start and e.event_date > days.period_start - 30
        group by all order by all
        """,
    )
    fast = query(
        built_warehouse.db,
        "select period_start, dau, wau, mau_28d, mau_30d from analytics.user_activity_daily order by all",
    )
    assert len(fast) >= 40 and any(row[2] > row[1] for row in fast)
    assert fast == slow


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


def test_unique_test_reports_each_duplicated_value_and_count(built_warehouse: Built, tmp_path: Path) -> None:
    """DuckDB's unique test groups the values' hashes first (macros/test_unique.sql) to stay
    within the memory limit; what it reports must still be dbt's: each repeated value, its count."""
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(built_warehouse.db, db)
    with duckdb.connect(str(db)) as con:
        con.execute("insert into core.fct_events select * from core.fct_events order by event_id limit 2")
        con.execute("insert into core.fct_events select * from core.fct_events order by event_id limit 1")
    repeated = query(
        db, "select event_id, count(*) from core.fct_events group by event_id having count(*) > 1 order by 1"
    )
    assert [count for _, count in repeated] == [3, 2]

    run = dbt_runner(db, tmp_path)
    scope = ("--vars", "{test_scope: all}")
    test_table = "unique_fct_events_event_id"  # --store-failures names the table after the test
    result = run("test", "--select", test_table, "--store-failures", *scope)
    assert result.returncode != 0, result.stdout[-3000:]
    tables = f"select table_schema from information_schema.tables where table_name = '{test_table}'"
    ((schema,),) = query(db, tables)
    reported = query(db, f'select unique_field, n_records from "{schema}".{test_table} order by 1')
    assert reported == repeated

    # The same test on a unique column passes.
    assert run("test", "--select", "unique_dim_users_user_id", *scope).returncode == 0
    results = json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
    statuses = [(r["unique_id"].split(".")[2], r["status"]) for r in results]
    assert statuses == [("unique_dim_users_user_id", "pass")]


def _throwaway_service_account_key(path: Path) -> None:
    """A service-account key file with a freshly generated RSA key: valid in form, useless anywhere."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "example-project",
                "private_key_id": "0" * 40,
                "private_key": pem,
                "client_email": "compile-only@example-project.iam.gserviceaccount.com",
                "client_id": "0",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )


def test_bigquery_target_compiles_offline_and_every_model_parses_as_bigquery_sql(dbt, tmp_path: Path) -> None:
    import sqlglot

    key = tmp_path / "key.json"
    _throwaway_service_account_key(key)
    env = {"DBT_BIGQUERY_PROJECT": "example-project", "GOOGLE_APPLICATION_CREDENTIALS": str(key)}
    offline = ("compile", "--no-populate-cache", "--no-introspect")
    result = dbt(*offline, "--vars", "{assume_incremental: false}", target="bigquery", extra_env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    compiled = sorted((tmp_path / "target" / "compiled").rglob("*.sql"))
    full_build = next(p for p in compiled if p.stem == "fct_events").read_text()
    incremental = dbt(
        *offline,
        "--select",
        "fct_events",
        "fct_user_days",
        "dim_users",
        "analytics",
        "--vars",
        "{assume_incremental: true}",
        target="bigquery",
        extra_env=env,
    )
    assert incremental.returncode == 0, incremental.stdout[-3000:]
    merged = next(p for p in (tmp_path / "target" / "compiled").rglob("fct_events.sql")).read_text()
    # Incremental: only the raw days whose load the table does not hold, a set difference BigQuery spells out.
    assert "except distinct" in merged and "except distinct" not in full_build
    sqlglot.parse(merged, read="bigquery", error_level=sqlglot.ErrorLevel.RAISE)
    days = next(p for p in (tmp_path / "target" / "compiled").rglob("fct_user_days.sql")).read_text()
    assert "where event_date in" in days and "except distinct" in days
    sqlglot.parse(days, read="bigquery", error_level=sqlglot.ErrorLevel.RAISE)
    models = [p for p in compiled if "/models/" in str(p)]
    assert {p.stem for p in models} >= {
        "stg_events",
        "fct_events",
        "dim_users",
        "user_activity_daily",
        "growth_accounting_daily",
        "growth_accounting_weekly",
        "growth_accounting_monthly",
        "retention_cohorts_weekly",
        "retention_cohorts_monthly",
        "miles_economy",
        "engagement_by_segment",
        "activity_by_segment_daily",
    }
    for path in compiled:
        sql = path.read_text()
        assert "to_days(" not in sql and "date_trunc('week'" not in sql, path.name  # DuckDB-only forms
        sqlglot.parse(sql, read="bigquery", error_level=sqlglot.ErrorLevel.RAISE)
    weekly = (next(p for p in models if p.stem == "growth_accounting_weekly")).read_text()
    assert "isoweek" in weekly  # Monday weeks on BigQuery too
    fct = next(p for p in models if p.stem == "fct_events").read_text()
    assert "`example-project`" in fct or "example-project" in fct


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


def test_docs_generate_documents_every_model_and_column(built_warehouse: Built, tmp_path: Path) -> None:
    result = dbt_runner(built_warehouse.db, tmp_path)("docs", "generate")
    assert result.returncode == 0, result.stdout[-3000:]
    target = tmp_path / "target"
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    models = {k: v for k, v in manifest["nodes"].items() if v["resource_type"] == "model"}
    assert len(models) >= 11
    for unique_id, node in models.items():
        assert node["description"].strip(), f"{unique_id} has no description"
        built = {c.lower() for c in catalog["nodes"][unique_id]["columns"]}
        documented = {c for c, spec in node["columns"].items() if spec["description"].strip()}
        assert built == documented, f"{unique_id}: undocumented {sorted(built - documented)}"
    assert "exposure.platform.user_activity_and_attrition" in manifest["exposures"]
