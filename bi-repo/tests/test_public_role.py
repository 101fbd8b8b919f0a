"""The anonymous visitor's role, as code (roles/Public.yaml): the dashboard and its data, nothing else.

Requests here carry what a browser on the public dashboard has: its session
cookie and the CSRF token the page embeds, but no login. So a refused write is
refused by Superset's roles, not by a missing token.
"""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.error
import urllib.request
from typing import Any

import duckdb

from conftest import Superset

DASHBOARD = "user-activity"


class Anonymous:
    """A browser that opened the public dashboard: its session cookie and the page's CSRF token, no login.

    Superset marks its cookies Secure (they travel over nginx's TLS); these requests go to gunicorn
    over plain HTTP, so the cookie is carried by hand, as the browser would carry it over HTTPS."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.cookies: dict[str, str] = {}
        self.token = ""
        status, page = self.call("GET", f"/superset/dashboard/{DASHBOARD}/")
        assert status == 200, page[:500]
        found = re.search(r'id="csrf_token"\s+value="([^"]+)"', page)
        assert found, "the dashboard page embeds no CSRF token"
        self.token = found.group(1)
        assert self.cookies, "Superset gave the page no session cookie"

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, str]:
        request = urllib.request.Request(self.url + path, method=method)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            request.add_header("Content-Type", "application/json")
        if self.cookies:
            request.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        if self.token:
            request.add_header("X-CSRFToken", self.token)
            request.add_header("Referer", self.url + "/")
        try:
            with urllib.request.urlopen(request, data=data, timeout=120) as response:
                self._keep(response.headers.get_all("Set-Cookie") or [])
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def _keep(self, set_cookies: list[str]) -> None:
        for header in set_cookies:
            name, _, value = header.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value.strip()


def test_the_public_sees_the_dashboard_and_its_data_and_nothing_else(superset: Superset) -> None:
    imported = superset.assets("import")
    assert imported.returncode == 0, imported.stderr[-3000:]
    again = superset.assets("import")
    assert "roles: unchanged" in again.stdout, again.stdout
    anonymous = Anonymous(superset.url)

    status, body = anonymous.call("GET", f"/api/v1/dashboard/{DASHBOARD}")
    dashboard = json.loads(body)["result"]
    assert status == 200 and dashboard["dashboard_title"] == "User Activity & Attrition"
    status, body = anonymous.call("GET", "/api/v1/chart/?q=(page_size:100)")
    charts = {c["slice_name"]: c["id"] for c in json.loads(body)["result"]}
    assert status == 200 and len(charts) == 9
    # Only the datasets the dashboard's charts read; no database, no SQL Lab, no users.
    status, body = anonymous.call("GET", "/api/v1/dataset/?q=(page_size:100)")
    visible = {d["table_name"] for d in json.loads(body)["result"]}
    assert visible == {
        "user_activity_daily",
        "growth_accounting_weekly",
        "retention_cohorts_weekly",
        "activity_by_segment_daily",
    }
    for path in ("/api/v1/database/", "/api/v1/security/roles/", "/api/v1/me/", "/api/v1/log/"):
        assert anonymous.call("GET", path)[0] in (401, 403), path

    # The numbers: a chart's data as the public gets it equals the warehouse's.
    status, body = anonymous.call(
        "GET", f"/api/v1/chart/{charts['Daily, weekly and monthly active users']}/data/"
    )
    assert status == 200
    rows = json.loads(body)["result"][0]["data"]
    with duckdb.connect(str(superset.warehouse), read_only=True) as con:
        total = con.execute("select sum(dau) from analytics.user_activity_daily").fetchone()
    assert total is not None and sum(row["DAU"] for row in rows) == total[0]

    # A query of its own on a dataset the dashboard does not show: refused.
    # (Its id from the metadata DB: FAB answers a read the public may make as the public, token or not.)
    metadata = superset.env["SUPERSET_METADATA_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(metadata) as con:
        (hidden,) = con.execute("select id from tables where table_name = 'miles_economy'").fetchone()
    query = {"datasource": {"id": hidden, "type": "table"}, "queries": [{"metrics": ["count"]}]}
    assert anonymous.call("POST", "/api/v1/chart/data", query)[0] in (401, 403)

    # Every write, with the page's own CSRF token: refused by the role.
    chart = charts["Stickiness"]
    writes = [
        ("PUT", f"/api/v1/chart/{chart}", {"description": "defaced"}),
        ("DELETE", f"/api/v1/chart/{chart}", None),
        ("POST", "/api/v1/dashboard/", {"dashboard_title": "spam"}),
        ("PUT", f"/api/v1/dashboard/{dashboard['id']}", {"dashboard_title": "defaced"}),
        ("POST", "/api/v1/sqllab/execute/", {"database_id": 1, "sql": "select 1"}),
        ("POST", f"/api/v1/dashboard/{dashboard['id']}/filter_state", {"value": "{}"}),
        ("POST", f"/api/v1/dashboard/{dashboard['id']}/permalink", {"dataMask": {}}),
        ("POST", "/api/v1/dataset/", {"database": 1, "table_name": "raw_events", "schema": "raw"}),
    ]
    for method, path, body in writes:
        status, said = anonymous.call(method, path, body)
        assert status in (401, 403), (method, path, status, said[:300])
    assert superset.assets("check").returncode == 0  # nothing changed


def test_a_permission_granted_by_hand_is_found_and_taken_away(superset: Superset) -> None:
    superset.assets("import")
    metadata = superset.env["SUPERSET_METADATA_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(metadata) as con:
        (role,) = con.execute("select id from ab_role where name = 'Public'").fetchone()
        (pvm,) = con.execute(
            "select pv.id from ab_permission_view pv join ab_permission p on p.id = pv.permission_id"
            " join ab_view_menu v on v.id = pv.view_menu_id where p.name = 'can_write' and v.name = 'Chart'"
        ).fetchone()
        con.execute(
            "insert into ab_permission_view_role (permission_view_id, role_id) values (?, ?)", [pvm, role]
        )
    drifted = superset.assets("check")
    assert drifted.returncode == 1 and "role Public: also holds can_write on Chart" in drifted.stderr
    restored = superset.assets("import")
    assert "role Public: revoked can_write on Chart" in restored.stdout, restored.stdout
    assert superset.assets("check").returncode == 0
