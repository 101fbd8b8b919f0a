"""The platform's Grafana dashboards, as code; running this file writes files/dashboards/*.json.

Built with Grafana's own Foundation SDK (grafana-foundation-sdk), so every
panel, query and option is a typed model of Grafana's dashboard schema rather
than hand-edited JSON. The chart ships the JSON as ConfigMaps that Grafana's
sidecar provisions; tests/test_dashboards.py regenerates it (no drift), reads
it back with the SDK's models, parses every PromQL expression with promtool
and checks each metric name against what the platform really emits.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import BigValueColorMode, BigValueGraphMode
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    Threshold,
    ThresholdsMode,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

OUT = Path(__file__).resolve().parent / "files" / "dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")


def query(expr: str, legend: str = "", instant: bool = False) -> prometheus.Dataquery:
    built = prometheus.Dataquery().expr(expr).legend_format(legend or "__auto").datasource(DATASOURCE)
    return built.instant() if instant else built.range()


def thresholds(*steps: tuple[float | None, str]) -> dashboard.ThresholdsConfig:
    return (
        dashboard.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=value, color=color) for value, color in steps])
    )


def series(title: str, unit: str, *targets: prometheus.Dataquery, description: str = "") -> timeseries.Panel:
    panel = timeseries.Panel().title(title).description(description).unit(unit).height(8).span(12)
    for target in targets:
        panel = panel.with_target(target)
    return panel.datasource(DATASOURCE)


def single(
    title: str,
    unit: str,
    target: prometheus.Dataquery,
    steps: dashboard.ThresholdsConfig,
    description: str = "",
) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .height(5)
        .span(6)
        .with_target(target)
        .thresholds(steps)
        .color_mode(BigValueColorMode.BACKGROUND)
        .graph_mode(BigValueGraphMode.NONE)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]))
        .datasource(DATASOURCE)
    )


def base(uid: str, title: str, description: str) -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["data-platform"])
        .editable()
        .refresh("1m")
        .time("now-24h", "now")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
    )


def airflow_health() -> dashboard.Dashboard:
    return (
        base(
            "platform-airflow-health",
            "Airflow health",
            "Scheduler, executor slots, DAG runs and pools, from Airflow's StatsD metrics.",
        )
        .with_row(dashboard.Row("Scheduler and executor"))
        .with_panel(
            single(
                "Scheduler heartbeats / min",
                "none",
                query("sum(rate(airflow_scheduler_heartbeat[5m])) * 60", instant=True),
                thresholds((None, "red"), (1, "green")),
                "Zero means no DAG run starts (alert AirflowSchedulerHeartbeatMissing).",
            )
        )
        .with_panel(
            single(
                "Failed DAG runs (24 h)",
                "none",
                query(
                    'sum(increase(airflow_dagrun_duration_seconds_count{state="failed"}[24h]))', instant=True
                ),
                thresholds((None, "green"), (1, "red")),
            )
        )
        .with_panel(
            single(
                "Failed tasks (24 h)",
                "none",
                query('sum(increase(airflow_ti_finish{state="failed"}[24h]))', instant=True),
                thresholds((None, "green"), (1, "orange"), (5, "red")),
            )
        )
        .with_panel(
            single(
                "Executor slots open",
                "none",
                query("sum(airflow_executor_open_slots)", instant=True),
                thresholds((None, "red"), (1, "green")),
            )
        )
        .with_panel(
            series(
                "Executor slots",
                "none",
                query("sum(airflow_executor_open_slots)", "open"),
                query("sum(airflow_executor_running_tasks)", "running"),
                query("sum(airflow_executor_queued_tasks)", "queued"),
            )
        )
        .with_panel(
            series(
                "Pool usage",
                "none",
                query("sum by (pool_name) (airflow_pool_running_slots)", "{{pool_name}} running"),
                query("sum by (pool_name) (airflow_pool_queued_slots)", "{{pool_name}} queued"),
                query("sum by (pool_name) (airflow_pool_open_slots)", "{{pool_name}} open"),
                description="The warehouse pool admits one writer at a time: queued slots there are normal.",
            )
        )
        .with_row(dashboard.Row("DAG runs"))
        .with_panel(
            series(
                "DAG run duration (mean over 1 h)",
                "s",
                query(
                    "sum by (dag_id) (rate(airflow_dagrun_duration_seconds_sum[1h]))"
                    " / sum by (dag_id) (rate(airflow_dagrun_duration_seconds_count[1h]))",
                    "{{dag_id}}",
                ),
            )
        )
        .with_panel(
            series(
                "DAG run failures per hour",
                "none",
                query(
                    'sum by (dag_id) (increase(airflow_dagrun_duration_seconds_count{state="failed"}[1h]))',
                    "{{dag_id}}",
                ),
            )
        )
        .with_panel(
            series(
                "Task failures per hour",
                "none",
                query('sum by (dag_id) (increase(airflow_ti_finish{state="failed"}[1h]))', "{{dag_id}}"),
            )
        )
        .with_panel(
            series(
                "Task outcomes per hour",
                "none",
                query("sum by (state) (increase(airflow_ti_finish[1h]))", "{{state}}"),
            )
        )
    )


def data_health() -> dashboard.Dashboard:
    return (
        base(
            "platform-data-health",
            "Data health",
            "Freshness, rows per day, quarantine, dbt results and the warehouse's growth"
            " (the pipeline's own metrics).",
        )
        .with_row(dashboard.Row("Now"))
        .with_panel(
            single(
                "Freshness: age of the newest event",
                "s",
                query("max(platform_data_freshness_lag_seconds)", instant=True),
                thresholds((None, "green"), (20 * 3600, "orange"), (26 * 3600, "red")),
                "SLO: under 26 hours (alert DataFreshnessLagOverSLO).",
            )
        )
        .with_panel(
            single(
                "Quarantine ratio (all loads shown)",
                "percentunit",
                query(
                    'sum(extract_load_rows{stage="load", kind="quarantined"})'
                    ' / sum(extract_load_rows{stage="load", kind="in"})',
                    instant=True,
                ),
                thresholds((None, "green"), (0.01, "orange"), (0.05, "red")),
            )
        )
        .with_panel(
            single(
                "dbt tests failing",
                "none",
                query('sum(platform_dbt_results{resource_type="test", status=~"fail|error"})', instant=True),
                thresholds((None, "green"), (1, "red")),
            )
        )
        .with_panel(
            single(
                "Kafka consumer lag",
                "none",
                query("sum(extract_load_kafka_consumer_lag)", instant=True),
                thresholds((None, "green"), (10000, "orange")),
            )
        )
        .with_row(dashboard.Row("Loads"))
        .with_panel(
            table.Panel()
            .title("Rows per day")
            .description("Each daily interval's last load: rows in, loaded, quarantined.")
            .height(8)
            .span(12)
            .datasource(DATASOURCE)
            .with_target(
                query(
                    'sum by (source, interval, kind) (extract_load_rows{stage="load"})', instant=True
                ).format(PromQueryFormat.TABLE)
            )
        )
        .with_panel(
            series(
                "Quarantined rows by reason",
                "none",
                query("sum by (source, reason) (extract_load_quarantined_rows)", "{{source}}: {{reason}}"),
            )
        )
        .with_panel(
            series(
                "Extract and load seconds per interval",
                "s",
                query("max by (source, stage) (extract_load_seconds)", "{{source}} {{stage}}"),
            )
        )
        .with_panel(
            series(
                "Kafka consumer lag by topic",
                "none",
                query("sum by (topic) (extract_load_kafka_consumer_lag)", "{{topic}}"),
            )
        )
        .with_row(dashboard.Row("dbt and the warehouse"))
        .with_panel(
            series(
                "dbt results",
                "none",
                query(
                    "sum by (resource_type, status) (platform_dbt_results)", "{{resource_type}} {{status}}"
                ),
            )
        )
        .with_panel(
            series(
                "Warehouse rows by table",
                "short",
                query("sum by (table) (platform_warehouse_rows)", "{{table}}"),
            )
        )
        .with_panel(
            series(
                "Warehouse size",
                "bytes",
                query("sum(platform_warehouse_bytes)", "bytes"),
            )
        )
    )


DASHBOARDS = {"airflow-health": airflow_health, "data-health": data_health}


def render() -> dict[str, str]:
    encoder = JSONEncoder(sort_keys=True, indent=2)
    return {name: encoder.encode(build().build()) + "\n" for name, build in DASHBOARDS.items()}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        json.loads(text)  # well-formed before it lands
        (OUT / f"{name}.json").write_text(text, encoding="utf-8")
        print(OUT / f"{name}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
