from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import BIN, Built, query


def test_dashboard_and_summary_show_what_the_warehouse_holds(built_warehouse: Built, tmp_path: Path) -> None:
    warehouse = built_warehouse.db
    # RESULTS_FILE: where a Kubernetes pod leaves the result for its XCom.
    env = {**os.environ, "DBT_DUCKDB_PATH": str(warehouse), "RESULTS_FILE": str(tmp_path / "return.json")}
    out = tmp_path / "dashboard"
    published = subprocess.run(
        [str(BIN / "publish-dashboard"), "--out-dir", str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(published.stdout)["weeks"] == 6
    assert json.loads((tmp_path / "return.json").read_text()) == [json.loads(published.stdout)]
    html = (out / "index.html").read_text()
    weeks = query(
        warehouse, "select period_start, active_users from analytics.growth_accounting_weekly order by 1"
    )
    assert "<svg" in html and "Weekly growth accounting" in html
    assert "<script" not in html and "http://" not in html and "https://" not in html  # one offline file
    assert str(weeks[-1][0]) in html
    users = query(warehouse, "select count(*) from core.dim_users")[0][0]
    assert json.loads((out / "summary.json").read_text())["totals"]["users"] == users

    summary = subprocess.run(
        [
            sys.executable,
            "-m",
            "dashboard.summary",
            "--run-results",
            str(built_warehouse.run_results),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "dbt tests passed" in summary and "of 0" not in summary
    assert f"{weeks[-1][1]:>12,}" in summary  # last week's active users are printed


def test_the_dashboard_renders_in_chromium_with_the_warehouse_numbers(
    built_warehouse: Built, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    warehouse = built_warehouse.db
    out = tmp_path / "dashboard"
    subprocess.run(
        [str(BIN / "publish-dashboard"), "--out-dir", str(out)],
        env={**os.environ, "DBT_DUCKDB_PATH": str(warehouse)},
        check=True,
        capture_output=True,
    )
    latest = query(
        warehouse,
        "select period_start, dau, wau, mau_28d from analytics.user_activity_daily order by 1 desc limit 1",
    )[0]
    monthly = query(
        warehouse, "select period_start, new_users from analytics.growth_accounting_monthly order by 1"
    )
    first_cohort = query(
        warehouse,
        "select cohort_start, cohort_size, retention_rate from analytics.retention_cohorts_weekly "
        "where periods_since = 1 order by cohort_start limit 1",
    )[0]

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed (make test installs it)"
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.on("request", lambda request: requests.append(request.url))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto((out / "index.html").as_uri())

        assert page.inner_text("#tile-dau b") == f"{latest[1]:,}"
        assert page.inner_text("#tile-wau b") == f"{latest[2]:,}"
        assert page.inner_text("#tile-mau b") == f"{latest[3]:,}"
        assert page.locator("#activity svg polyline").count() >= 3  # DAU, WAU, MAU lines
        weekly_bars = page.locator("#panel-growth-weekly svg rect")
        assert weekly_bars.count() >= 4 * 6 and page.is_visible("#panel-growth-weekly")
        # The period selector works without script: the monthly panel appears, the weekly one goes.
        assert not page.is_visible("#panel-growth-monthly")
        page.click("label[for=growth-monthly]")
        assert page.is_visible("#panel-growth-monthly") and not page.is_visible("#panel-growth-weekly")
        for period_start, new_users in monthly:
            title = f"{period_start} new: {new_users:,}"
            assert page.locator("#panel-growth-monthly svg title", has_text=title).count() == 1
        cohort_cell = f"cohort {first_cohort[0]} ({first_cohort[1]:,}), +1: {first_cohort[2]:.1%}"
        assert page.locator("#panel-retention-weekly svg title", has_text=cohort_cell).count() == 1
        page.click("label[for=segment-country]")
        assert page.is_visible("#panel-segment-country table")
        page.click("label[for=growth-weekly]")

        artifacts = Path(os.environ.get("TEST_ARTIFACTS_DIR", tmp_path))
        artifacts.mkdir(parents=True, exist_ok=True)
        screenshot = artifacts / "dashboard.png"
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    assert screenshot.stat().st_size > 50_000
    assert errors == []
    assert [url for url in requests if not url.startswith("file://")] == []  # nothing fetched: works offline
