"""The "User Activity & Attrition" dashboard's charts, declared once, written as Superset's YAML.

Each chart is its form data (what Superset's editor saves as `params`) and the
query that form data asks for (`query_context`, what Superset's chart-data API,
cache warm-up and reports run). Both are derived from one declaration here, so
they cannot disagree; the generated YAML is what git holds and review reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bi.datasets import stable_uuid

DASHBOARD_TITLE = "User Activity & Attrition"
DASHBOARD_SLUG = "user-activity"
# The table the segment filters select from: every user once a day, so its rows add up.
SEGMENTS = "activity_by_segment_daily"
SEGMENT_FILTERS = {
    "platform": "Platform",
    "country": "Country",
    "acquisition_utm_source": "Acquisition source",
}


def sql_metric(expression: str, label: str) -> dict[str, Any]:
    return {"expressionType": "SQL", "sqlExpression": expression, "label": label}


@dataclass(frozen=True)
class Chart:
    name: str
    table: str
    viz_type: str
    metrics: list[dict[str, Any]]
    x_axis: str | None = None
    time_grain: str | None = None
    groupby: list[str] = field(default_factory=list)
    where: str = ""
    extra_params: dict[str, Any] = field(default_factory=dict)
    width: int = 6
    row_limit: int = 10000
    # The column the dashboard's date range filters on (default: the x axis).
    time_column: str | None = None

    @property
    def temporal(self) -> str | None:
        return self.time_column or self.x_axis

    @property
    def uuid(self) -> str:
        return stable_uuid("chart", self.name)

    @property
    def dataset_uuid(self) -> str:
        return stable_uuid("dataset", f"analytics.{self.table}")

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "viz_type": self.viz_type,
            "metrics": self.metrics,
            "groupby": self.groupby,
            "adhoc_filters": self._filters(),
            "row_limit": self.row_limit,
            "time_range": "No filter",
            "annotation_layers": [],
        }
        if self.x_axis:
            params |= {"x_axis": self.x_axis, "time_grain_sqla": self.time_grain}
        return params | self.extra_params

    def _filters(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        if self.temporal:
            # The range the dashboard's date filter sets lands here; without it a chart ignores the filter.
            found.append(
                {
                    "expressionType": "SIMPLE",
                    "clause": "WHERE",
                    "subject": self.temporal,
                    "operator": "TEMPORAL_RANGE",
                    "comparator": "No filter",
                }
            )
        if self.where:
            found.append(
                {"expressionType": "SQL", "clause": "WHERE", "sqlExpression": self.where, "subject": None}
            )
        return found

    def query_context(self) -> str:
        columns: list[Any] = []
        if self.x_axis:
            columns.append(
                {
                    "columnType": "BASE_AXIS",
                    "expressionType": "SQL",
                    "label": self.x_axis,
                    "sqlExpression": self.x_axis,
                    "timeGrain": self.time_grain,
                }
            )
        columns += self.groupby
        query = {
            "columns": columns,
            "metrics": self.metrics,
            "filters": (
                [{"col": self.temporal, "op": "TEMPORAL_RANGE", "val": "No filter"}] if self.temporal else []
            ),
            "extras": {"having": "", "where": f"({self.where})" if self.where else ""},
            "orderby": [[self.metrics[0], False]] if not self.x_axis else [],
            "row_limit": self.row_limit,
            "series_limit": 0,
            "order_desc": True,
            "time_range": "No filter",
            "annotation_layers": [],
            "applied_time_extras": {},
            "url_params": {},
            "custom_params": {},
            "custom_form_data": {},
        }
        context = {
            "force": False,
            "queries": [query],
            "form_data": self.params(),
            "result_format": "json",
            "result_type": "full",
        }
        return json.dumps(context, sort_keys=True)

    def asset(self) -> dict[str, Any]:
        return {
            "slice_name": self.name,
            "description": None,
            "certified_by": None,
            "certification_details": None,
            "viz_type": self.viz_type,
            "params": self.params(),
            "query_context": self.query_context(),
            "cache_timeout": None,
            "uuid": self.uuid,
            "version": "1.0.0",
            "dataset_uuid": self.dataset_uuid,
        }


def daily_segments(name: str, segment: str, width: int = 6) -> Chart:
    """Daily active users stacked by one segment: the rows add up, so the stack is the DAU. One
    metric only: stacking new users on active users would count each new user twice."""
    return Chart(
        name,
        SEGMENTS,
        "echarts_timeseries_bar",
        [sql_metric("SUM(active_users)", "active users")],
        x_axis="period_start",
        time_grain="P1D",
        groupby=[segment],
        extra_params={"stack": "Stack"},
        width=width,
    )


CHARTS = [
    Chart(
        "Daily, weekly and monthly active users",
        "user_activity_daily",
        "echarts_timeseries_line",
        [
            sql_metric("SUM(dau)", "DAU"),
            sql_metric("SUM(wau)", "WAU"),
            sql_metric("SUM(mau_28d)", "MAU (28 days)"),
        ],
        x_axis="period_start",
        time_grain="P1D",
    ),
    Chart(
        "Stickiness",
        "user_activity_daily",
        "echarts_timeseries_line",
        [sql_metric("AVG(dau_mau_ratio)", "DAU/MAU"), sql_metric("AVG(wau_mau_ratio)", "WAU/MAU")],
        x_axis="period_start",
        time_grain="P1D",
        extra_params={"y_axis_format": ".0%"},
    ),
    Chart(
        "Weekly growth accounting",
        "growth_accounting_weekly",
        "echarts_timeseries_bar",
        [
            sql_metric("SUM(retained_users)", "retained"),
            sql_metric("SUM(new_users)", "new"),
            sql_metric("SUM(resurrected_users)", "resurrected"),
            sql_metric("-SUM(churned_users)", "churned"),
        ],
        x_axis="period_start",
        time_grain="P1W",
        extra_params={"stack": "Stack"},
        width=8,
    ),
    Chart(
        "Weekly quick ratio",
        "growth_accounting_weekly",
        "echarts_timeseries_line",
        [sql_metric("AVG(quick_ratio)", "quick ratio")],
        x_axis="period_start",
        time_grain="P1W",
        width=4,
    ),
    daily_segments("Daily active users by platform", "platform"),
    daily_segments("Daily active users by acquisition source", "acquisition_utm_source"),
    Chart(
        "Weekly miles earned and redeemed",
        SEGMENTS,
        "echarts_timeseries_bar",
        [sql_metric("SUM(miles_earned)", "earned"), sql_metric("-SUM(miles_redeemed)", "redeemed")],
        x_axis="period_start",
        time_grain="P1W",
        extra_params={"stack": "Stack"},
        width=8,
    ),
    daily_segments("Daily active users by country", "country", width=4),
    Chart(
        "Weekly retention",
        "retention_cohorts_weekly",
        "pivot_table_v2",
        [sql_metric("AVG(retention_rate)", "retention")],
        groupby=["cohort_start", "periods_since"],
        time_column="cohort_start",
        extra_params={
            "groupbyRows": ["cohort_start"],
            "groupbyColumns": ["periods_since"],
            "valueFormat": ".0%",
            "aggregateFunction": "Average",
        },
        width=12,
    ),
]


def dashboard(charts: list[Chart]) -> dict[str, Any]:
    """The dashboard's layout: charts in rows of 12 columns, in the order declared."""
    position: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
        "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": DASHBOARD_TITLE}},
    }
    rows: list[list[Chart]] = [[]]
    for chart in charts:
        if sum(c.width for c in rows[-1]) + chart.width > 12:
            rows.append([])
        rows[-1].append(chart)
    for number, row in enumerate(rows, start=1):
        row_id = f"ROW-{number}"
        position["GRID_ID"]["children"].append(row_id)
        position[row_id] = {
            "type": "ROW",
            "id": row_id,
            "children": [],
            "parents": ["ROOT_ID", "GRID_ID"],
            "meta": {"background": "BACKGROUND_TRANSPARENT"},
        }
        for chart in row:
            chart_id = f"CHART-{chart.uuid[:8]}"
            position[row_id]["children"].append(chart_id)
            position[chart_id] = {
                "type": "CHART",
                "id": chart_id,
                "children": [],
                "parents": ["ROOT_ID", "GRID_ID", row_id],
                "meta": {"uuid": chart.uuid, "width": chart.width, "height": 50, "sliceName": chart.name},
            }
    return {
        "dashboard_title": DASHBOARD_TITLE,
        "description": None,
        "css": None,
        "slug": DASHBOARD_SLUG,
        "certified_by": None,
        "certification_details": None,
        "published": True,
        "uuid": stable_uuid("dashboard", DASHBOARD_SLUG),
        "position": position,
        "metadata": {"native_filter_configuration": native_filters(charts)},
        "theme_uuid": None,
        "version": "1.0.0",
    }


def native_filters(charts: list[Chart]) -> list[dict[str, Any]]:
    """Filters a viewer changes on the dashboard itself (the static page cannot): the date range, for
    every chart (each dataset's time column is its period start), and one per segment for the charts
    on the segments table (the only one whose rows add up under any selection of segments).

    Scopes name charts by UUID here; `assets.bundle` and `assets.normalise` map them to an install's ids.
    """
    elsewhere = sorted(chart.uuid for chart in charts if chart.table != SEGMENTS)
    date_range: dict[str, Any] = {
        "id": "NATIVE_FILTER-date-range",
        "name": "Date range",
        "filterType": "filter_time",
        "type": "NATIVE_FILTER",
        "description": "The periods shown: days, weeks or cohorts starting in the range.",
        "targets": [{}],
        "controlValues": {"enableEmptyFilter": False},
        "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}},
        "cascadeParentIds": [],
        "scope": {"rootPath": ["ROOT_ID"], "excluded": []},
    }
    segments = [
        {
            "id": f"NATIVE_FILTER-{column.replace('_', '-')}",
            "name": name,
            "filterType": "filter_select",
            "type": "NATIVE_FILTER",
            "description": f"{name}: the segment charts show only the users and events selected.",
            "targets": [
                {"datasetUuid": stable_uuid("dataset", f"analytics.{SEGMENTS}"), "column": {"name": column}}
            ],
            "controlValues": {
                "enableEmptyFilter": False,
                "defaultToFirstItem": False,
                "multiSelect": True,
                "searchAllOptions": False,
                "inverseSelection": False,
            },
            "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}},
            "cascadeParentIds": [],
            "scope": {"rootPath": ["ROOT_ID"], "excluded": elsewhere},
        }
        for column, name in SEGMENT_FILTERS.items()
    ]
    return [date_range, *segments]
