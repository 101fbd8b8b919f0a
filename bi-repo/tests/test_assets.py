"""The dashboards as code (issue 25): imported by a command that converges, exported back to git's text."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
from pathlib import Path
from typing import Any

import duckdb
import pytest

from bi import assets
from bi.charts import CHARTS, SEGMENTS
from bi.settings import ASSETS
from conftest import DBT_REPO, SNAPSHOT, Superset, publish_snapshot


def test_import_converges_and_exports_what_git_holds(superset: Superset, tmp_path: Path) -> None:
    # The first import was the deploy's, into a fresh Superset.
    assert "assets: imported (20 objects)" in superset.deployed
    assert "imported: dashboards User Activity & Attrition" in superset.deployed
    # Again: Superset already holds git's assets, so nothing is imported.
    again = superset.assets("import")
    assert again.returncode == 0 and "assets: unchanged (20 objects)" in again.stdout, again.stdout
    checked = superset.assets("check")
    assert checked.returncode == 0, checked.stderr[-2000:]
    # Export after import equals git, object by object.
    exported = superset.assets("export", "--out", str(tmp_path / "export"))
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert assets.load(tmp_path / "export") == assets.load(ASSETS)


def chart_id(superset: Superset, token: str, name: str) -> int:
    charts = superset.call("/api/v1/chart/?q=(page_size:100)", token=token)["result"]
    return int(next(c["id"] for c in charts if c["slice_name"] == name))


def test_a_change_made_in_superset_is_found_and_undone_by_the_next_import(superset: Superset) -> None:
    superset.assets("import")
    # Someone edits a chart in Superset (its metadata DB, which the UI writes).
    metadata = superset.env["SUPERSET_METADATA_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(metadata) as con:
        con.execute("update slices set description = 'edited in the UI' where slice_name = 'Stickiness'")
    drifted = superset.assets("check")
    assert drifted.returncode == 1, drifted.stdout
    assert "charts Stickiness" in drifted.stderr and "differs in description" in drifted.stderr
    restored = superset.assets("import")
    assert "imported: charts Stickiness" in restored.stdout, restored.stdout
    assert superset.assets("check").returncode == 0


def test_the_assets_in_git_are_what_the_generator_builds_from_the_dbt_project(
    superset: Superset, tmp_path: Path
) -> None:
    out = tmp_path / "generated"
    manifest = DBT_REPO / "target" / "manifest.json"
    done = superset.assets(
        "generate", "--manifest", str(manifest), "--warehouse", str(superset.warehouse), "--out", str(out)
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert assets.load(out) == assets.load(ASSETS), "regenerate them: bi-assets generate (bi-repo/README.md)"
    # Datasets and column descriptions are dbt's.
    datasets = {d["table_name"]: d for (kind, _), d in assets.load(ASSETS).items() if kind == "datasets"}
    assert "user_activity_daily" in datasets and "fct_events" not in datasets  # analytics only
    dau = next(c for c in datasets["user_activity_daily"]["columns"] if c["column_name"] == "dau")
    assert dau["description"] == "Users with an event on the day."


def chart_result(superset: Superset, token: str, name: str, force: bool = False) -> dict[str, Any]:
    """A chart's data answer (rows, `is_cached`); `force` bypasses the cache (a read of the warehouse)."""
    query = "?force=true" if force else ""
    data = superset.call(f"/api/v1/chart/{chart_id(superset, token, name)}/data/{query}", token=token)
    return dict(data["result"][0])


def chart_rows(superset: Superset, token: str, name: str, force: bool = False) -> list[dict[str, Any]]:
    return list(chart_result(superset, token, name, force)["data"])


def day(epoch_ms: float) -> dt.date:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, dt.UTC).date()


def by_day(rows: list[dict[str, Any]], column: str = "period_start") -> dict[dt.date, dict[str, Any]]:
    return {day(row[column]): row for row in rows}


def test_every_chart_shows_what_the_warehouse_holds(superset: Superset) -> None:
    superset.assets("import")
    token = superset.token()
    with duckdb.connect(str(superset.warehouse), read_only=True) as con:

        def one(sql: str) -> tuple[Any, ...]:
            row = con.execute(sql).fetchone()
            assert row is not None, sql
            return tuple(row)

        # DAU, WAU, MAU and stickiness on the last day.
        last, dau, wau, mau, stickiness = one(
            "select period_start, dau, wau, mau_28d, dau_mau_ratio"
            " from analytics.user_activity_daily order by 1 desc limit 1"
        )
        activity = by_day(chart_rows(superset, token, "Daily, weekly and monthly active users"))[last]
        assert (activity["DAU"], activity["WAU"], activity["MAU (28 days)"]) == (dau, wau, mau)
        assert abs(by_day(chart_rows(superset, token, "Stickiness"))[last]["DAU/MAU"] - stickiness) < 1e-9
        # A growth-accounting week, churn drawn below zero.
        week, new, retained, resurrected, churned = one(
            "select period_start, new_users, retained_users, resurrected_users, churned_users"
            " from analytics.growth_accounting_weekly order by 1 desc limit 1 offset 1"
        )
        shown = by_day(chart_rows(superset, token, "Weekly growth accounting"))[week]
        assert [shown[k] for k in ("new", "retained", "resurrected", "churned")] == [
            new,
            retained,
            resurrected,
            -churned,
        ]
        # A retention cell.
        cohort, periods, rate = one(
            "select cohort_start, periods_since, retention_rate from analytics.retention_cohorts_weekly"
            " where periods_since = 1 order by cohort_start limit 1"
        )
        cells = {
            (day(r["cohort_start"]), r["periods_since"]): r["retention"]
            for r in chart_rows(superset, token, "Weekly retention")
        }
        assert abs(cells[(cohort, periods)] - rate) < 1e-9


HOLD_WRITE_LOCK = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("create or replace table main.holding_the_lock as select 1 as n")
print("locked", flush=True)
time.sleep(600)
"""


def test_dbt_holding_the_warehouse_does_not_stop_superset_or_change_its_numbers(superset: Superset) -> None:
    """A build in progress holds DuckDB's write lock; Superset reads the snapshot, the right numbers."""
    superset.assets("import")
    token = superset.token()
    latest = "select period_start, dau from analytics.user_activity_daily order by 1 desc limit 1"
    with duckdb.connect(str(superset.warehouse), read_only=True) as con:
        last, dau = con.execute(latest).fetchone() or (None, None)
    chart = "Daily, weekly and monthly active users"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE_LOCK, str(superset.warehouse)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        # What reading the build itself would do now: refused.
        with pytest.raises(duckdb.IOException, match=r"(?i)lock"):
            duckdb.connect(str(superset.warehouse), read_only=True)
        for _ in range(3):  # past the cache: each read opens the snapshot
            assert by_day(chart_rows(superset, token, chart, force=True))[last]["DAU"] == dau
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_a_new_build_is_shown_once_airflow_drops_the_cached_results(
    superset: Superset, tmp_path: Path
) -> None:
    """Chart results are cached (Redis): a new snapshot alone leaves viewers on the old numbers; the
    refresh dbt_transform runs after publishing (Airflow's code, its user's one permission) ends that."""
    superset.assets("import")
    token = superset.token()
    chart = "Daily, weekly and monthly active users"
    latest = "select period_start, dau from analytics.user_activity_daily order by 1 desc limit 1"
    with duckdb.connect(str(superset.warehouse), read_only=True) as con:
        last, dau = con.execute(latest).fetchone() or (None, None)
    chart_result(superset, token, chart)
    cached = chart_result(superset, token, chart)
    assert cached["is_cached"] and by_day(cached["data"])[last]["DAU"] == dau
    changed = tmp_path / "next-build.duckdb"
    shutil.copyfile(superset.warehouse, changed)
    with duckdb.connect(str(changed)) as con:
        con.execute(
            "update analytics.user_activity_daily set dau = dau + 1000 where period_start = ?", [last]
        )
    snapshot = superset.warehouse.with_name(SNAPSHOT)
    tables = [
        "user_activity_daily",
        "growth_accounting_weekly",
        "no_such_table",
    ]  # an unknown one is no error
    try:
        publish_snapshot(changed, snapshot)
        stale = chart_result(superset, token, chart)
        assert stale["is_cached"] and by_day(stale["data"])[last]["DAU"] == dau  # what a viewer would see
        refreshed = superset.refresh_cache(tables)
        assert refreshed.returncode == 0, refreshed.stderr[-2000:]
        assert json.loads(refreshed.stdout)["datasets"] == sorted(tables)
        fresh = chart_result(superset, token, chart)
        assert not fresh["is_cached"] and by_day(fresh["data"])[last]["DAU"] == dau + 1000
    finally:
        publish_snapshot(superset.warehouse, snapshot)
        assert superset.refresh_cache(tables).returncode == 0
    assert by_day(chart_rows(superset, token, chart))[last]["DAU"] == dau
    # The refresher may do nothing else (beyond what the public may: FAB answers those as the public).
    password = superset.env["BI_CACHE_REFRESHER_PASSWORD"]
    login = {"username": "airflow-cache-refresher", "password": password, "provider": "db"}
    refresher = str(superset.call("/api/v1/security/login", {**login, "refresh": False})["access_token"])
    with pytest.raises(urllib.error.HTTPError) as denied:
        superset.call("/api/v1/database/", token=refresher)
    assert denied.value.code in (401, 403)


def chart_query(
    superset: Superset, token: str, name: str, filters: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A chart's saved query with filters added, as the dashboard sends it when a native filter is set."""
    chart = superset.call(f"/api/v1/chart/{chart_id(superset, token, name)}", token=token)["result"]
    context = json.loads(chart["query_context"])
    context["datasource"] = {"id": chart_dataset(superset, token, name), "type": "table"}
    for query in context["queries"]:
        query["filters"] = [*query["filters"], *filters]
    return list(superset.call("/api/v1/chart/data", context, token=token)["result"][0]["data"])


def chart_dataset(superset: Superset, token: str, name: str) -> int:
    charts = superset.call(
        "/api/v1/chart/?q=(page_size:100,columns:!(slice_name,datasource_id))", token=token
    )
    return int(next(c["datasource_id"] for c in charts["result"] if c["slice_name"] == name))


def test_the_segment_charts_add_up_to_the_dau_and_filter_as_the_warehouse_says(superset: Superset) -> None:
    """Segments are what a viewer filters on: each day's segments sum to the DAU counted elsewhere, and a
    segment filter (what the dashboard's native filter sends) leaves exactly the warehouse's rows."""
    superset.assets("import")
    token = superset.token()
    with duckdb.connect(str(superset.warehouse), read_only=True) as con:
        last, dau = con.execute(
            "select period_start, dau from analytics.user_activity_daily order by 1 desc limit 1"
        ).fetchone() or (None, None)
        by_platform = dict(
            con.execute(
                "select platform, sum(active_users) from analytics.activity_by_segment_daily"
                " where period_start = ? group by platform",
                [last],
            ).fetchall()
        )
        # The fixture's users share one country and source; they differ by platform.
        platform, *_ = con.execute(
            "select platform, count(*) from analytics.activity_by_segment_daily"
            " group by platform order by 2 desc limit 1"
        ).fetchone() or (None,)
        on_platform, everyone = (
            dict(
                con.execute(
                    "select period_start, sum(active_users) from analytics.activity_by_segment_daily"
                    f" where {where} group by period_start",
                    [platform] if "?" in where else [],
                ).fetchall()
            )
            for where in ("platform = ?", "true")
        )
    shown = {
        row["platform"]: row["active users"]
        for row in chart_rows(superset, token, "Daily active users by platform")
        if day(row["period_start"]) == last
    }
    assert shown == by_platform and sum(shown.values()) == dau
    # Every daily chart on the segments table stacks to the DAU: no user counted twice.
    for chart in CHARTS:
        if chart.table == SEGMENTS and chart.time_grain == "P1D":
            rows = [
                row for row in chart_rows(superset, token, chart.name) if day(row["period_start"]) == last
            ]
            stacked = sum(row[metric["label"]] for row in rows for metric in chart.metrics)
            assert stacked == dau, (chart.name, stacked, dau)
    # The platform filter, as the native filter applies it to another segment chart.
    filtered = chart_query(
        superset,
        token,
        "Daily active users by acquisition source",
        [{"col": "platform", "op": "IN", "val": [platform]}],
    )
    per_day: dict[dt.date, int] = {}
    for row in filtered:
        per_day[day(row["period_start"])] = per_day.get(day(row["period_start"]), 0) + row["active users"]
    assert per_day == on_platform
    assert sum(on_platform.values()) < sum(everyone.values())  # the filter changed the numbers
