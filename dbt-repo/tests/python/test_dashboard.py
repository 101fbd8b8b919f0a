from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import BIN, BUILD, fixture_rows, insert_raw, query


def test_dashboard_and_summary_show_what_the_warehouse_holds(warehouse: Path, dbt, tmp_path: Path) -> None:
    insert_raw(warehouse, fixture_rows())
    assert dbt(*BUILD).returncode == 0
    env = {**os.environ, "DBT_DUCKDB_PATH": str(warehouse)}
    out = tmp_path / "dashboard"
    published = subprocess.run(
        [str(BIN / "publish-dashboard"), "--out-dir", str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(published.stdout)["weeks"] == 6
    html = (out / "index.html").read_text()
    weeks = query(
        warehouse, "select period_start, active_users from analytics.growth_accounting_weekly order by 1"
    )
    assert "<svg" in html and "Weekly growth accounting" in html
    assert html.count("<tr><td>") == len(weeks)  # the table lists every week (up to 8)
    assert str(weeks[-1][0]) in html
    users = query(warehouse, "select count(*) from core.dim_users")[0][0]
    assert json.loads((out / "summary.json").read_text())["totals"]["users"] == users

    summary = subprocess.run(
        [
            sys.executable,
            "-m",
            "dashboard.summary",
            "--run-results",
            str(tmp_path / "target" / "run_results.json"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "dbt tests passed" in summary and "of 0" not in summary
    assert f"{weeks[-1][1]:>12,}" in summary  # last week's active users are printed
