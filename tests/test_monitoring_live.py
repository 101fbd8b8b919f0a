"""Real Prometheus scraping the pipeline's metrics after a real DAG run, and the freshness alert firing.

The session's demo (conftest's `generated_demo`) ran on small generated data
with metrics on (every extract & load run drops a text file;
tools/local-env.sh). `data-health serve` exposes them
with the warehouse's freshness and dbt's results; Prometheus (Debian's, on
loopback) scrapes it and evaluates the platform's own rule files. The row
counts Prometheus reports must equal the warehouse's. Then new data stops and
the exporter's clock is moved 30 hours on (DATA_HEALTH_NOW, its
configuration): DataFreshnessLagOverSLO goes pending, then firing, in
Prometheus's alerts API. Only that alert's `for:` is shortened, in a copy of
the rules, so the test does not wait ten minutes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from test_dashboards import expressions, metric_names

from conftest import GENERATED_DEMO, Demo

pytestmark = pytest.mark.e2e  # runs the pipeline: DAG runs, the stack, containers

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts-repo"
RULES = sorted((ROOT / "helm_config" / "platform" / "files" / "rules").glob("*.yaml"))
DATA_HEALTH = ROOT / "dbt-repo" / ".venv" / "bin" / "data-health"
ARTIFACTS = ROOT / ".test-results" / "monitoring"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _wait(what: str, check: Any, timeout: float = 90, every: float = 1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(every)


class Exporter:
    """`data-health serve` on a fixed port, restartable with another clock."""

    def __init__(self, demo: Path, port: int) -> None:
        self.demo, self.port, self.process = demo, port, None
        self.log = demo / "logs" / "data-health.log"

    def start(self, now: dt.datetime) -> None:
        self.stop()
        env = {
            **os.environ,
            "DBT_DUCKDB_PATH": str(self.demo / "warehouse.duckdb"),
            "DBT_ARTIFACTS_URL": f"file://{self.demo / 'dbt-artifacts'}",
            "DATA_HEALTH_NOW": now.isoformat(),
        }
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [DATA_HEALTH, "serve", "--port", str(self.port), "--textfile-dir", self.demo / "metrics"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait(
            "the exporter", lambda: urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2)
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory, generated_demo: Demo) -> Iterator[dict[str, Any]]:
    prometheus = shutil.which("prometheus")
    if not prometheus:
        pytest.fail("prometheus is not installed: `make system-packages` installs it")
    base = tmp_path_factory.mktemp("monitoring")
    # The session's demo, copied: the stream below adds its metrics, and the exporter opens the warehouse.
    demo = base / "demo"
    shutil.copytree(generated_demo.folder, demo, symlinks=True)
    streamed = stream_part_of_a_topic(demo, base)
    with duckdb.connect(str(demo / "warehouse.duckdb"), read_only=True) as con:
        newest = (
            con.execute("select max(event_time_utc) from core.fct_events")
            .fetchone()[0]
            .replace(tzinfo=dt.UTC)
        )
        warehouse = {
            "fct_events": con.execute("select count(*) from core.fct_events").fetchone()[0],
            "raw_events": con.execute("select count(*) from raw.events").fetchone()[0],
        }
    exporter = Exporter(demo, _free_port())
    exporter.start(newest + dt.timedelta(hours=1))  # as if shortly after the last event

    rules = []
    for path in RULES:
        document = yaml.safe_load(path.read_text())
        for group in document["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == "DataFreshnessLagOverSLO":
                    rule["for"] = "6s"
        copy = base / "rules" / path.name
        copy.parent.mkdir(exist_ok=True)
        copy.write_text(yaml.safe_dump(document))
        rules.append(str(copy))
    web = _free_port()
    config = base / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": rules,
                "scrape_configs": [
                    {
                        "job_name": "data-health",
                        "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}],
                    }
                ],
            }
        )
    )
    server = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={base / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{web}",
        ],
        stdout=(base / "prometheus.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{web}/api/v1"
    try:
        _wait("prometheus", lambda: _get(f"{api}/status/buildinfo")["status"] == "success")
        yield {
            "api": api,
            "exporter": exporter,
            "newest": newest,
            "warehouse": warehouse,
            "demo": demo,
            "streamed": streamed,
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
        exporter.stop()


def stream_part_of_a_topic(demo: Path, base: Path) -> int:
    """A second source, `clickstream`, from Kafka: a bounded `extract-load stream` run that stops
    behind (so the consumer lag is real), then a load of what it landed, where every 20th
    message is broken and gets quarantined with its reason."""
    events = base / "topic.jsonl"
    events.write_text(
        "".join(
            f"{{broken json {i}\n"  # distinct keys: spread over the partitions
            if i % 20 == 0
            else json.dumps(
                {"event_time": f"2025-03-10T10:{i % 60:02d}:00", "user_id": f"u{i}", "event_type": "like"}
            )
            + "\n"
            for i in range(600)
        )
    )
    scripts = SCRIPTS / ".venv" / "bin"
    env = {**os.environ, "EXTRACT_LOAD_METRICS_DIR": str(demo / "metrics")}
    bucket = base / "clickstream-bucket"
    cluster = subprocess.Popen(
        [scripts / "python", SCRIPTS / "tests" / "kafka_mock_cluster.py", "events", events, "3"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        bootstrap = cluster.stdout.readline().split()[0]  # type: ignore[union-attr]
        streamed = subprocess.run(
            [
                *(scripts / "extract-load", "stream", "--source", "clickstream", "--topic", "events"),
                *("--bootstrap-servers", bootstrap, "--group", "monitoring", "--bucket", bucket),
                *("--max-batch", "100", "--max-wait", "1", "--until-idle", "3", "--max-messages", "200"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert streamed.returncode == 0, streamed.stderr[-3000:]
        result = json.loads(streamed.stdout.splitlines()[-1])
    finally:
        cluster.stdin.close()  # type: ignore[union-attr]
        cluster.wait(timeout=30)
    for day in result["days"]:
        loaded = subprocess.run(
            [
                *(scripts / "extract-load", "load", "--source", "clickstream", "--start", day),
                *(
                    "--bucket",
                    bucket,
                    "--warehouse",
                    base / "clickstream.duckdb",
                    "--max-quarantine-ratio",
                    "1",
                ),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert loaded.returncode == 0, loaded.stderr[-3000:]
    return result["messages"]


def used_metric_names() -> dict[str, set[str]]:
    """Every metric name the dashboards and the alert rules read, with where it is read."""
    used: dict[str, set[str]] = {}
    for dashboard, exprs in expressions().items():
        for expr in exprs:
            for name in metric_names(expr):
                used.setdefault(name, set()).add(f"dashboard {dashboard}")
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                for name in metric_names(rule["expr"]):
                    used.setdefault(name, set()).add(f"alert {rule['alert']}")
    return used


def query(api: str, expr: str) -> list[dict[str, Any]]:
    return _get(f"{api}/query?{urllib.parse.urlencode({'query': expr})}")["data"]["result"]


def alert_state(api: str, name: str) -> str | None:
    alerts = _get(f"{api}/alerts")["data"]["alerts"]
    return next((a["state"] for a in alerts if a["labels"]["alertname"] == name), None)


def test_prometheus_row_counts_equal_the_warehouses(monitored: dict[str, Any]) -> None:
    api = monitored["api"]
    loaded = _wait(
        "the extract & load metrics",
        lambda: query(api, 'sum(extract_load_rows{source="events", stage="load", kind="loaded"})'),
    )
    assert float(loaded[0]["value"][1]) == monitored["warehouse"]["raw_events"]
    landed = query(api, 'sum(extract_load_rows{source="events", stage="extract", kind="landed"})')
    assert float(landed[0]["value"][1]) == monitored["warehouse"]["raw_events"]
    quarantined = query(api, 'sum(extract_load_rows{source="events", stage="load", kind="quarantined"})')
    assert float(quarantined[0]["value"][1]) == 0
    days = query(api, 'count(extract_load_rows{source="events", stage="load", kind="loaded"})')
    assert float(days[0]["value"][1]) == int(GENERATED_DEMO["DEMO_DAYS"])  # one series per daily interval
    fct = query(api, 'platform_warehouse_rows{table="core.fct_events"}')
    assert float(fct[0]["value"][1]) == monitored["warehouse"]["fct_events"]
    tests = query(api, 'sum(platform_dbt_results{resource_type="test", status="pass"})')
    assert float(tests[0]["value"][1]) > 50
    failing = query(api, 'sum(platform_dbt_results{resource_type="test", status=~"fail|error"})')
    assert float(failing[0]["value"][1]) == 0
    # The bounded stream run stopped behind: the lag Prometheus holds is what it left on the topic.
    lag = query(api, 'sum(extract_load_kafka_consumer_lag{topic="events"})')
    assert float(lag[0]["value"][1]) == 600 - monitored["streamed"] > 0
    # The streamed source's broken messages: quarantined with a reason, in = loaded + quarantined.
    stream_in = float(query(api, 'sum(extract_load_rows{source="clickstream", kind="in"})')[0]["value"][1])
    stream_loaded = float(
        query(api, 'sum(extract_load_rows{source="clickstream", kind="loaded"})')[0]["value"][1]
    )
    reasons = query(api, 'sum by (reason) (extract_load_quarantined_rows{source="clickstream"})')
    assert stream_in == monitored["streamed"] == stream_loaded + sum(float(r["value"][1]) for r in reasons)
    assert reasons and all(r["metric"]["reason"] for r in reasons)


def test_the_quarantine_alert_fires_for_the_source_with_broken_records(monitored: dict[str, Any]) -> None:
    api = monitored["api"]
    _wait(
        "QuarantineRatioOverThreshold", lambda: alert_state(api, "QuarantineRatioOverThreshold") == "firing"
    )
    firing = [
        a
        for a in _get(f"{api}/alerts")["data"]["alerts"]
        if a["labels"]["alertname"] == "QuarantineRatioOverThreshold"
    ]
    assert {a["labels"]["source"] for a in firing} == {"clickstream"}  # the clean source stays quiet


def test_dashboards_and_alerts_use_only_metrics_the_pipeline_emits(monitored: dict[str, Any]) -> None:
    """Every pipeline metric a dashboard or an alert reads is one Prometheus really scraped here.

    Airflow's metrics (airflow_*) come from its StatsD through the exporter's
    mapping, which does not run on this machine; they are not in this check.
    """
    emitted = set(_get(f"{monitored['api']}/label/__name__/values")["data"])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "emitted-metrics.json").write_text(json.dumps(sorted(emitted), indent=2))
    used = used_metric_names()
    pipeline = {name: where for name, where in used.items() if not name.startswith("airflow_")}
    assert len(pipeline) >= 8, pipeline
    missing = {name: sorted(where) for name, where in pipeline.items() if name not in emitted}
    assert not missing, f"used but never emitted: {missing}"


def test_the_freshness_alert_goes_pending_then_firing_when_data_stops(monitored: dict[str, Any]) -> None:
    api, exporter = monitored["api"], monitored["exporter"]
    lag = _wait("the freshness lag", lambda: query(api, "platform_data_freshness_lag_seconds"))
    assert float(lag[0]["value"][1]) == pytest.approx(3600, abs=120)
    time.sleep(3)  # several evaluations while fresh
    assert alert_state(api, "DataFreshnessLagOverSLO") is None
    # No new data arrives and 30 hours pass (the exporter's clock, moved by its configuration).
    exporter.start(monitored["newest"] + dt.timedelta(hours=30))
    _wait("pending", lambda: alert_state(api, "DataFreshnessLagOverSLO") == "pending", timeout=30, every=0.25)
    _wait("firing", lambda: alert_state(api, "DataFreshnessLagOverSLO") == "firing", timeout=30, every=0.25)
    firing = next(a for a in _get(f"{api}/alerts")["data"]["alerts"] if a["state"] == "firing")
    assert firing["labels"] == {
        "alertname": "DataFreshnessLagOverSLO",
        "severity": "critical",
        "table": "core.fct_events",
    }
    assert "1d 6h" in firing["annotations"]["summary"]
    # Data arrives again: the alert resolves.
    exporter.start(monitored["newest"] + dt.timedelta(hours=2))
    _wait("resolved", lambda: alert_state(api, "DataFreshnessLagOverSLO") is None, timeout=30, every=0.5)
