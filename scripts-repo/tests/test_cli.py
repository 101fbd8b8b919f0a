from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from extract_load.cli import main


def test_extract_and_load_over_real_http_with_one_json_line_per_interval(
    small_stream: Path, api, tmp_path: Path
) -> None:
    runner = CliRunner()
    with api(small_stream) as url:
        extracted = runner.invoke(
            main,
            ["extract", "--start", "2025-03-04", "--end", "2025-03-07", "--bucket", str(tmp_path / "b")],
            # RESULTS_FILE is where a Kubernetes pod leaves its XCom.
            env={"EVENTS_API_URL": url, "RESULTS_FILE": str(tmp_path / "xcom" / "return.json")},
        )
    assert extracted.exit_code == 0, extracted.output
    lines = [json.loads(line) for line in extracted.stdout.splitlines()]
    assert [line["interval_start"] for line in lines] == ["2025-03-04", "2025-03-05", "2025-03-06"]
    assert json.loads((tmp_path / "xcom" / "return.json").read_text()) == lines
    loaded = runner.invoke(
        main,
        [
            "load",
            "--start",
            "2025-03-04",
            "--end",
            "2025-03-07",
            "--bucket",
            str(tmp_path / "b"),
            "--warehouse",
            f"duckdb://{tmp_path / 'w.duckdb'}",
        ],
    )
    assert loaded.exit_code == 0, loaded.output
    results = [json.loads(line) for line in loaded.stdout.splitlines()]
    assert [r["loaded"] + r["quarantined"] for r in results] == [r["rows"] for r in lines]


def test_loading_an_interval_never_extracted_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "load",
            "--start",
            "2025-03-04",
            "--bucket",
            str(tmp_path),
            "--warehouse",
            str(tmp_path / "w.duckdb"),
        ],
    )
    assert result.exit_code == 4  # EXIT_LANDING_INVALID: re-run the extract
    assert "no manifest" in result.output and "never extracted" in result.output


def test_a_source_that_stays_down_exits_with_its_own_code(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        result = CliRunner().invoke(
            main,
            ["extract", "--start", "2025-03-04", "--bucket", str(tmp_path), "--max-attempts", "2"],
            env={"EVENTS_API_URL": url},
        )
    assert result.exit_code == 6, result.output
    assert "failed after retries" in result.output


def test_console_script_runs_in_its_own_process(tmp_path: Path) -> None:
    out = tmp_path / "events.parquet"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "extract_load.cli",
            "generate",
            "--out",
            str(out),
            "--days",
            "7",
            "--users",
            "20",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(completed.stdout)["events"] > 0 and out.is_file()


def test_the_public_sample_export_lands_and_loads_whole(sample_export: Path, api, tmp_path: Path) -> None:
    runner = CliRunner()
    bucket, warehouse = str(tmp_path / "b"), str(tmp_path / "w.duckdb")
    with api(sample_export) as url:
        extracted = runner.invoke(
            main,
            ["extract", "--start", "2025-03-01", "--end", "2025-06-10", "--bucket", bucket],
            env={"EVENTS_API_URL": url},
        )
    assert extracted.exit_code == 0, extracted.output
    loaded = runner.invoke(
        main,
        [
            "load",
            "--start",
            "2025-03-01",
            "--end",
            "2025-06-10",
            "--bucket",
            bucket,
            "--warehouse",
            warehouse,
        ],
    )
    assert loaded.exit_code == 0, loaded.output
    results = [json.loads(line) for line in loaded.stdout.splitlines()]
    assert sum(r["loaded"] for r in results) == 10_000
    assert sum(r["quarantined"] for r in results) == 0


def test_runs_write_prometheus_metrics_and_json_logs(small_stream: Path, api, tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    bucket, metrics = str(tmp_path / "b"), tmp_path / "metrics" / "load.prom"
    with api(small_stream) as url:
        extracted = subprocess.run(
            [
                sys.executable,
                "-m",
                "extract_load.cli",
                "extract",
                "--start",
                "2025-03-05",
                "--bucket",
                bucket,
            ],
            env={**os.environ, "EVENTS_API_URL": url},
            capture_output=True,
            text=True,
            check=True,
        )
    logs = [json.loads(line) for line in extracted.stderr.splitlines()]
    assert any("extracted events" in entry["message"] for entry in logs)
    assert {"ts", "level", "logger", "message"} <= set(logs[0])
    loaded = subprocess.run(
        [
            sys.executable,
            "-m",
            "extract_load.cli",
            "--metrics-file",
            str(metrics),
            "load",
            "--start",
            "2025-03-05",
            "--bucket",
            bucket,
            "--warehouse",
            str(tmp_path / "w.duckdb"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(loaded.stdout.splitlines()[-1])
    samples = {
        (s.name, s.labels.get("kind")): s.value
        for family in text_string_to_metric_families(metrics.read_text())
        for s in family.samples
    }
    assert samples[("extract_load_rows", "in")] == result["rows_in"] > 0
    assert samples[("extract_load_rows", "loaded")] == result["loaded"]
    assert samples[("extract_load_rows", "quarantined")] == 0
    assert ("extract_load_seconds", None) in samples and ("extract_load_bytes", None) in samples


def test_metrics_go_to_the_metrics_folder_and_to_statsd(small_stream: Path, api, tmp_path: Path) -> None:
    """Without --metrics-file: one file per run in EXTRACT_LOAD_METRICS_DIR, and tagged gauges over UDP."""
    import socket

    bucket, folder = str(tmp_path / "b"), tmp_path / "metrics"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as statsd:
        statsd.bind(("127.0.0.1", 0))
        env = {
            **os.environ,
            "EXTRACT_LOAD_METRICS_DIR": str(folder),
            "STATSD_HOST": "127.0.0.1",
            "STATSD_PORT": str(statsd.getsockname()[1]),
        }
        with api(small_stream) as url:
            for command in (
                ["extract", "--start", "2025-03-05", "--end", "2025-03-07", "--bucket", bucket],
                [
                    *("load", "--start", "2025-03-05", "--end", "2025-03-07", "--bucket", bucket),
                    *("--warehouse", str(tmp_path / "w.duckdb")),
                ],
            ):
                subprocess.run(
                    [sys.executable, "-m", "extract_load.cli", *command],
                    env={**env, "EVENTS_API_URL": url},
                    capture_output=True,
                    text=True,
                    check=True,
                )
        lines = []
        statsd.settimeout(1)  # the runs are over: what was sent is queued
        try:
            while True:
                lines.append(statsd.recv(65535).decode())
        except TimeoutError:
            pass
    assert sorted(p.name for p in folder.iterdir()) == [
        "extract_load-events-extract-2025-03-05_2025-03-06.prom",
        "extract_load-events-load-2025-03-05_2025-03-06.prom",
    ]
    loaded = [
        line
        for line in lines
        if line.startswith("extract_load_rows:") and "kind:loaded" in line and "stage:load" in line
    ]
    assert len(loaded) == 2 and all(line.split("|")[1] == "g" for line in loaded)
    assert any("interval:2025-03-05" in line and "source:events" in line for line in loaded)


def test_two_extracts_spilling_at_once_on_one_worker_both_land(tmp_path: Path) -> None:
    """Airflow's extract pool runs two at a time: their DuckDB spill folders must not collide."""
    source = tmp_path / "events.parquet"
    generate = [sys.executable, "-m", "extract_load.cli", "generate", "--out", str(source), "--days", "10",
                "--events", "100000", "--seed", "3"]  # fmt: skip
    subprocess.run(generate, capture_output=True, check=True)
    # A limit far below the staged file's size makes both spill, into the default folder under TMPDIR.
    env = {**os.environ, "EXTRACT_LOAD_MEMORY_LIMIT": "40MB", "TMPDIR": str(tmp_path)}
    env.pop("EXTRACT_LOAD_TEMP_DIR", None)
    extract = [sys.executable, "-m", "extract_load.cli", "extract-file", "--path", str(source)]
    runs = [
        subprocess.Popen(
            [*extract, "--bucket", str(tmp_path / f"bucket-{n}")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in (1, 2)
    ]
    outcomes = [(*run.communicate(timeout=300), run.returncode) for run in runs]
    for stdout, stderr, code in outcomes:
        assert code == 0, stderr[-2000:]
        lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
        landed, file = lines[:-1], lines[-1]
        assert (
            sum(r["rows"] for r in landed)
            == file["landed"]
            == file["rows_in"]
            == pq.read_metadata(source).num_rows
        )
    assert not any((tmp_path / "extract-load-spill").iterdir()), "spill folders are removed on close"
