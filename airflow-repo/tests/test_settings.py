"""The DAGs' one settings object: defaults, validation, and no secret in its repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_runtime.settings import settings


def test_defaults_are_the_images_paths_and_a_local_runner() -> None:
    current = settings({})
    assert current.runner == "local" and not current.on_kubernetes
    assert current.manifest_path == Path("/opt/dbt/target/manifest.json")
    assert current.profiles_dir == Path("/opt/dbt")
    assert current.stream_source == "events_stream" and current.sources == "events"


def test_a_misspelt_runner_is_refused_rather_than_run_locally() -> None:
    with pytest.raises(ValueError, match="PLATFORM_RUNNER='k8s'"):
        settings({"PLATFORM_RUNNER": "k8s"})


def test_programs_come_from_their_cmd_variables() -> None:
    current = settings({"PLATFORM_DBT_CMD": "/venv/bin/dbt", "PLATFORM_SCRIPTS_CMD": ""})
    assert current.command("dbt", "dbt") == "/venv/bin/dbt"
    assert current.command("scripts", "extract-load") == "extract-load"  # empty means unset


def test_secrets_stay_out_of_its_repr() -> None:
    current = settings(
        {
            "PLATFORM_METADATA_DB_URL": "postgresql://airflow:hunter2@db/airflow",  # pragma: allowlist secret
            "PLATFORM_ALERT_SLACK_WEBHOOK": "https://hooks.slack.invalid/T/B/xyz",
        }
    )
    assert current.metadata_db_url and "hunter2" not in repr(current) and "xyz" not in repr(current)
