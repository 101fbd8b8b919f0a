from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from pipeline_runtime.maintenance import db_clean_argv, remove_old_files, retention_days

NOW = dt.datetime(2025, 3, 17, tzinfo=dt.UTC)


def _file(path: Path, age_days: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("log")
    stamp = (NOW - dt.timedelta(days=age_days)).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def test_only_files_older_than_the_cutoff_go_and_empty_folders_with_them(tmp_path: Path) -> None:
    old = _file(tmp_path / "dag_id=a" / "run_id=1" / "task_id=t" / "attempt=1.log", 45)
    kept = _file(tmp_path / "dag_id=a" / "run_id=2" / "task_id=t" / "attempt=1.log", 5)
    assert remove_old_files(tmp_path, NOW - dt.timedelta(days=30)) == 1
    assert not old.exists() and not (tmp_path / "dag_id=a" / "run_id=1").exists()
    assert kept.exists()


def test_db_clean_is_bounded_by_the_cutoff_and_keeps_no_archive() -> None:
    argv = db_clean_argv(NOW - dt.timedelta(days=90))
    assert argv[1:3] == ["db", "clean"] and "--skip-archive" in argv and "--yes" in argv
    assert argv[argv.index("--clean-before-timestamp") + 1] == "2024-12-17T00:00:00+00:00"


def test_retention_must_keep_at_least_a_day(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLATFORM_LOG_RETENTION_DAYS", "0")
    with pytest.raises(ValueError, match="at least one day"):
        retention_days("logs")
    monkeypatch.setenv("PLATFORM_LOG_RETENTION_DAYS", "a month")
    with pytest.raises(ValueError, match="whole number of days"):
        retention_days("logs")
    monkeypatch.delenv("PLATFORM_LOG_RETENTION_DAYS")
    assert retention_days("logs") == 30


def test_the_db_clean_gets_the_metadata_url_it_is_given_and_nothing_else(monkeypatch) -> None:
    """Airflow 3 hides the metadata DB URL from tasks; the cleaning task gets it explicitly or stops."""
    import pytest

    from pipeline_runtime.maintenance import metadata_db_env

    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "airflow-db-not-allowed:///")
    monkeypatch.delenv("PLATFORM_METADATA_DB_URL", raising=False)
    with pytest.raises(RuntimeError, match="PLATFORM_METADATA_DB_URL"):
        metadata_db_env()
    monkeypatch.setenv("PLATFORM_METADATA_DB_URL", "postgresql+psycopg2://airflow@db/airflow")
    assert (
        metadata_db_env()["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg2://airflow@db/airflow"
    )
