"""`data-health`: freshness against a movable clock, dbt's latest result per node, a locked warehouse."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from data_health.artifacts import ArtifactStore
from data_health.collect import DataHealthCollector
from data_health.textfiles import TextfileCollector
from warehouses.duckdb import DuckDBWarehouse


def samples(*collectors: object) -> dict[tuple[str, tuple], float]:
    registry = CollectorRegistry()
    for collector in collectors:
        registry.register(collector)  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema core; create schema raw")
        con.execute("create table core.fct_events (event_time_utc timestamp)")
        con.execute("insert into core.fct_events values ('2025-03-01 10:00:00'), ('2025-03-02 08:30:00')")
        con.execute("create table raw.events as select 1 as x from range(5)")
    return path


def run_results(folder: Path, generated_at: str, results: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "metadata": {"generated_at": generated_at},
        "results": [{"unique_id": unique_id, "status": status} for unique_id, status in results.items()],
    }
    (folder / "run_results.json").write_text(json.dumps(document))


def test_freshness_is_measured_against_the_configured_clock(
    warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_HEALTH_NOW", "2025-03-03T08:30:00+00:00")
    got = samples(DataHealthCollector(DuckDBWarehouse(warehouse)))
    table = (("table", "core.fct_events"),)
    assert got[("platform_data_freshness_lag_seconds", table)] == 24 * 3600
    newest = dt.datetime(2025, 3, 2, 8, 30, tzinfo=dt.UTC).timestamp()
    assert got[("platform_data_newest_event_timestamp_seconds", table)] == newest
    assert got[("platform_warehouse_rows", (("table", "raw.events"),))] == 5
    assert got[("platform_warehouse_rows", table)] == 2
    assert got[("platform_warehouse_bytes", ())] > 0
    # The clock moves on; nothing else changed: the lag grows.
    monkeypatch.setenv("DATA_HEALTH_NOW", "2025-03-04T08:30:00+00:00")
    assert (
        samples(DataHealthCollector(DuckDBWarehouse(warehouse)))[
            ("platform_data_freshness_lag_seconds", table)
        ]
        == 48 * 3600
    )


def test_each_dbt_node_counts_once_with_its_latest_status(warehouse: Path, tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    run_results(
        artifacts / "run1" / "a", "2026-01-01T00:00:00Z", {"test.p.t1": "fail", "model.p.m1": "success"}
    )
    run_results(artifacts / "run1" / "b", "2026-01-01T00:01:00Z", {"test.p.t2": "pass"})
    # A retry the next day: t1 now passes.
    run_results(
        artifacts / "run2" / "a", "2026-01-02T00:00:00Z", {"test.p.t1": "pass", "model.p.m1": "success"}
    )
    (artifacts / "broken").mkdir()
    (artifacts / "broken" / "run_results.json").write_text("{truncated")
    got = samples(
        DataHealthCollector(DuckDBWarehouse(warehouse), ArtifactStore(str(artifacts)), target="duckdb")
    )

    def status(kind: str, value: str) -> float:
        return got[
            ("platform_dbt_results", (("resource_type", kind), ("status", value), ("target", "duckdb")))
        ]

    assert status("test", "pass") == 2 and status("test", "fail") == 0  # fixed: back to zero, not gone
    assert status("model", "success") == 1 and status("model", "error") == 0
    when = dt.datetime(2026, 1, 2, tzinfo=dt.UTC).timestamp()
    assert got[("platform_dbt_last_run_timestamp_seconds", (("target", "duckdb"),))] == when


def test_a_locked_warehouse_reports_down_and_keeps_the_last_reading(
    warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_HEALTH_NOW", "2025-03-03T08:30:00+00:00")
    collector = DataHealthCollector(DuckDBWarehouse(warehouse))
    assert samples(collector)[("platform_data_health_warehouse_up", ())] == 1
    # Another process holds DuckDB's write lock, as dbt does while it builds.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(warehouse)!r}); "
            "print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"  # type: ignore[union-attr]
        monkeypatch.setenv("DATA_HEALTH_NOW", "2025-03-03T09:30:00+00:00")
        got = samples(collector)
        assert got[("platform_data_health_warehouse_up", ())] == 0
        # The last reading's newest event, aged by the clock.
        assert got[("platform_data_freshness_lag_seconds", (("table", "core.fct_events"),))] == 25 * 3600
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert samples(collector)[("platform_data_health_warehouse_up", ())] == 1


def test_text_files_merge_into_one_family_per_metric(tmp_path: Path) -> None:
    for day in ("2025-03-01", "2025-03-02"):
        (tmp_path / f"extract_load-events-load-{day}.prom").write_text(
            "# HELP extract_load_rows Rows\n# TYPE extract_load_rows gauge\n"
            f'extract_load_rows{{source="events",interval="{day}",kind="loaded"}} 10\n'
        )
    (tmp_path / "broken.prom").write_text("this is not { the format\n")
    text = generate_latest(_registry(TextfileCollector(tmp_path))).decode()
    assert text.count("# TYPE extract_load_rows gauge") == 1
    assert text.count("extract_load_rows{") == 2


def _registry(collector: object) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)  # type: ignore[arg-type]
    return registry


def test_the_exporter_stops_cleanly_on_sigterm_while_scrapes_are_in_flight(tmp_path: Path) -> None:
    """Kubernetes and the tests stop `serve` with SIGTERM, whatever Prometheus is scraping then.

    A scrape reads DuckDB on a request thread. Two failures, both seen: the
    kernel gave SIGTERM to that thread, so the main thread never woke to stop
    (a hang); or the interpreter finalized under the read (a crash in DuckDB).
    """
    import os
    import signal
    import threading
    import urllib.request

    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema core")
        # Big enough that a scrape takes a while, so SIGTERM lands during one.
        con.execute(
            "create table core.fct_events as"
            " select timestamp '2025-01-01' + to_seconds(i) as event_time_utc from range(3000000) t(i)"
        )
    data_health = Path(sys.executable).parent / "data-health"
    env = {**os.environ, "DBT_DUCKDB_PATH": str(path), "DBT_ARTIFACTS_URL": ""}
    for attempt in range(10):
        url_file = tmp_path / f"url-{attempt}"
        server = subprocess.Popen(
            [data_health, "serve", "--port", "0", "--url-file", url_file],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not url_file.exists() or not url_file.read_text().endswith("/metrics"):
            assert server.poll() is None and time.monotonic() < deadline, "the exporter did not start"
            time.sleep(0.05)
        url = url_file.read_text()
        scraping = threading.Event()
        scraping.set()

        def scrape(url: str = url, scraping: threading.Event = scraping) -> None:
            while scraping.is_set():
                try:
                    urllib.request.urlopen(url, timeout=10).read()
                except OSError:
                    time.sleep(0.01)

        scrapers = [threading.Thread(target=scrape, daemon=True) for _ in range(3)]
        for thread in scrapers:
            thread.start()
        time.sleep(0.3 + 0.05 * attempt)
        server.send_signal(signal.SIGTERM)
        try:
            output, _ = server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            output, _ = server.communicate()
            pytest.fail(f"the exporter hung on SIGTERM (attempt {attempt}):\n{output}")
        finally:
            scraping.clear()
            for thread in scrapers:
                thread.join()
        assert server.returncode == 0, f"attempt {attempt}: exit {server.returncode}\n{output}"
        assert "terminate called" not in output
