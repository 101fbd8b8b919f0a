"""Alert rules and Alertmanager routing, checked and unit-tested with Prometheus's own tools.

The rule files are the ones the platform chart wraps into its PrometheusRule
(helm_config/platform/files/rules/); `promtool test rules` makes each alert
fire on the series that should trigger it and resolve when they recover
(tests/monitoring/alerts.test.yaml).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RULES = sorted((ROOT / "helm_config" / "platform" / "files" / "rules").glob("*.yaml"))
ALERTMANAGER = ROOT / "helm_config" / "platform" / "files" / "alertmanager" / "alertmanager.yaml"
UNIT_TESTS = ROOT / "tests" / "monitoring" / "alerts.test.yaml"


pytestmark = pytest.mark.platform  # configuration checked by its tools, no pipeline run


def tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: `make system-packages` installs it")
    return found


def alerts() -> dict[str, dict]:
    return {
        rule["alert"]: rule
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def test_promtool_checks_every_rule_file() -> None:
    checked = subprocess.run([tool("promtool"), "check", "rules", *RULES], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("SUCCESS") == len(RULES)


def test_every_alert_has_a_severity_a_summary_and_runbook_text() -> None:
    expected = {
        "AirflowSchedulerHeartbeatMissing",
        "AirflowDagRunFailed",
        "AirflowTaskFailureSpike",
        "DataFreshnessLagOverSLO",
        "QuarantineRatioOverThreshold",
        "DbtTestsFailing",
        "DbtImageRefreshFailed",
        "KafkaConsumerLagGrowing",
    }
    found = alerts()
    assert expected <= set(found), expected - set(found)
    for name, rule in found.items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert rule["annotations"]["summary"], name
        assert len(rule["annotations"]["runbook"].split()) >= 15, f"{name}: runbook text too thin"


def test_every_alert_fires_and_resolves_in_promtools_unit_tests() -> None:
    tested = subprocess.run(
        [tool("promtool"), "test", "rules", UNIT_TESTS], capture_output=True, text=True, cwd=UNIT_TESTS.parent
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    cases = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    checks = [check for case in cases for check in case["alert_rule_test"]]
    for name in alerts():
        fired = [c for c in checks if c["alertname"] == name and c["exp_alerts"]]
        quiet = [c for c in checks if c["alertname"] == name and not c["exp_alerts"]]
        assert fired and quiet, f"{name} needs a case where it fires and one where it does not"


def test_the_charts_prometheusrule_carries_exactly_the_rule_files() -> None:
    from test_platform_chart import render

    rule = next(o for o in render("prod") if o["kind"] == "PrometheusRule")
    groups = [g for path in RULES for g in yaml.safe_load(path.read_text())["groups"]]
    assert rule["spec"]["groups"] == groups


def test_alertmanager_routes_by_severity_with_credentials_from_files() -> None:
    amtool = tool("amtool")
    checked = subprocess.run([amtool, "check-config", ALERTMANAGER], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for labels, receiver in (
        (["severity=critical", "alertname=DataFreshnessLagOverSLO"], "on-call"),
        (["severity=warning", "alertname=QuarantineRatioOverThreshold"], "data-team-slack"),
        (["alertname=SomethingElse"], "data-team-email"),
    ):
        routed = subprocess.run(
            [amtool, "config", "routes", "test", "--config.file", ALERTMANAGER, *labels],
            capture_output=True,
            text=True,
        )
        assert routed.stdout.strip() == receiver, (labels, routed.stdout, routed.stderr)
    config = yaml.safe_load(ALERTMANAGER.read_text())
    text = ALERTMANAGER.read_text()
    assert "api_url:" not in text and "smtp_auth_password:" not in text  # only the *_file forms
    assert config["global"]["smtp_auth_password_file"].startswith("/etc/alertmanager/secrets/")


def test_the_statsd_mapping_turns_airflows_tags_into_labels() -> None:
    from statsd_mapping import StatsdMapper

    mapper = StatsdMapper()
    finish = mapper.map_line("airflow.ti.finish,dag_id=dbt_transform,task_id=fct_events.run,state=failed:1|c")
    assert finish is not None and finish.name == "airflow_ti_finish" and finish.kind == "counter"
    assert dict(finish.labels) == {"dag_id": "dbt_transform", "task_id": "fct_events.run", "state": "failed"}
    duration = mapper.map_line("airflow.dagrun.duration.success,dag_id=events_ingest:1234.5|ms")
    assert duration is not None and dict(duration.labels) == {"dag_id": "events_ingest", "state": "success"}
    assert duration.series_names == {
        "airflow_dagrun_duration_seconds",
        "airflow_dagrun_duration_seconds_sum",
        "airflow_dagrun_duration_seconds_count",
    }
    pool = mapper.map_line("airflow.pool.open_slots,pool_name=warehouse:1|g")
    assert pool is not None and pool.name == "airflow_pool_open_slots"
    assert dict(pool.labels) == {"pool_name": "warehouse"}
    # Unmapped names keep their parts; tagged gauges (the pipeline's, DogStatsD) keep their tags as labels.
    unmapped = mapper.map_line("airflow.dag_processing.total_parse_time:1.2|g")
    assert unmapped is not None and unmapped.name == "airflow_dag_processing_total_parse_time"
    tagged = mapper.map_line("extract_load_rows:10|g|#kind:loaded,source:events")
    assert tagged is not None and tagged.name == "extract_load_rows"
    assert dict(tagged.labels) == {"kind": "loaded", "source": "events"}


def test_series_labelled_by_data_interval_expire_and_the_ones_alerts_measure_do_not() -> None:
    """Every day ever loaded was a StatsD series for ever (`ttl: 0s`)."""
    from statsd_mapping import StatsdMapper

    mapper = StatsdMapper()
    tags = "|#source:events,stage:load,interval:2025-03-05"
    for line in (
        f"extract_load_rows:10|g{tags},kind:loaded",
        f"extract_load_bytes:100|g{tags}",
        f"extract_load_seconds:1.5|g{tags}",
        "extract_load_quarantined_rows:1|g|#source:events,interval:2025-03-05,reason:missing_user_id",
    ):
        mapped = mapper.map_line(line)
        assert mapped is not None and 3600 <= mapped.ttl_seconds <= 7 * 86400, line
    for line in (
        "extract_load_last_success_timestamp_seconds:1.7e9|g|#source:events,stage:load",
        "extract_load_kafka_consumer_lag:3|g|#source:events,topic:events,partition:0",
        "airflow.scheduler_heartbeat:1|c",
    ):
        mapped = mapper.map_line(line)
        assert mapped is not None and mapped.ttl_seconds == 0, line
