from __future__ import annotations

import sys

import pytest

from pipeline_runtime import commands, runner


def test_the_token_travels_in_the_environment_never_in_argv() -> None:
    secret = frozenset({"EVENTS_API_TOKEN"})
    command = commands.Command("scripts", ("extract-load",), {"EVENTS_API_TOKEN": "tok-123"}, secret)
    assert "tok-123" not in command.display()
    assert command.env["EVENTS_API_TOKEN"] == "tok-123"
    assert "EVENTS_API_TOKEN" in command.secret_env


def test_program_comes_from_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    assert commands.load("events", "2025-03-01", "2025-03-02").argv[0] == "extract-load"
    monkeypatch.setenv("PLATFORM_SCRIPTS_CMD", "/opt/venv/bin/extract-load --log-level DEBUG")
    argv = commands.load("events", "2025-03-01", "2025-03-02").argv
    assert argv[:3] == ("/opt/venv/bin/extract-load", "--log-level", "DEBUG")
    assert argv[3:] == ("load", "--source", "events", "--start", "2025-03-01", "--end", "2025-03-02")


def test_runner_returns_json_results_and_fails_loudly() -> None:
    ok = commands.Command("test", (sys.executable, "-c", "print('log line'); print('{\"rows\": 3}')"))
    assert runner.run(ok) == [{"rows": 3}]
    bad = commands.Command("test", (sys.executable, "-c", "import sys; sys.exit(6)"))
    with pytest.raises(runner.CommandFailedError, match="exited with 6") as failed:
        runner.run(bad)
    assert failed.value.exit_code == 6


def test_data_problems_fail_without_retries() -> None:
    from airflow.sdk.exceptions import AirflowFailException

    over_threshold = commands.Command("test", (sys.executable, "-c", "import sys; sys.exit(3)"))
    with pytest.raises(AirflowFailException, match="not retried"):
        runner.run(over_threshold)


def test_runner_passes_extra_environment() -> None:
    command = commands.Command(
        "test",
        (sys.executable, "-c", "import json, os; print(json.dumps({'v': os.environ['EXTRA']}))"),
        {"EXTRA": "yes"},
    )
    assert runner.run(command) == [{"v": "yes"}]
