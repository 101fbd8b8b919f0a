from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from click.testing import CliRunner

from extract_load.cli import main
from extract_load.sources.registry import load_sources


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_the_packaged_sources_cover_every_kind() -> None:
    sources = load_sources()
    assert {s.kind for s in sources.values()} == {"rest", "file", "kafka", "sheets"}
    assert sources["events"].params("2025-03-05", "2025-03-06") == {
        "start": "2025-03-05T00:00:00",
        "end": "2025-03-06T00:00:00",
    }


def test_list_names_where_settings_come_from_never_their_values() -> None:
    result = CliRunner().invoke(
        main, ["sources", "list"], env={"EVENTS_API_URL": "http://x", "EVENTS_API_TOKEN": "tok-secret-1"}
    )
    assert result.exit_code == 0, result.output
    events = next(line for line in _lines(result.stdout) if line["source"] == "events")
    assert events["settings"]["base_url"] == {"env": "EVENTS_API_URL", "set": True}
    assert events["settings"]["auth"] == {"env": "EVENTS_API_TOKEN", "set": True}
    assert "tok-secret-1" not in result.output and "http://x" not in result.output


def test_check_reaches_a_live_source_and_reports_an_unreachable_one(
    small_stream: Path, api, tmp_path: Path
) -> None:
    export = tmp_path / "export.csv"
    export.write_text("event_time,user_id,event_type\n")
    with api(small_stream) as url:
        ok = CliRunner().invoke(
            main,
            ["sources", "check", "events", "app_export"],
            env={"EVENTS_API_URL": url, "APP_EXPORT_LOCATION": str(export)},
        )
    assert ok.exit_code == 0, ok.output
    assert [r["ok"] for r in _lines(ok.stdout)] == [True, True]
    down = CliRunner().invoke(
        main, ["sources", "check", "events", "events_stream"], env={"EVENTS_API_URL": "http://127.0.0.1:9"}
    )
    reports = {r["source"]: r for r in _lines(down.stdout)}
    assert down.exit_code == 1
    assert reports["events"]["ok"] is False and "ConnectionError" in reports["events"]["error"]
    assert reports["events_stream"]["error"].startswith("not configured: set ")


def test_a_sources_file_from_the_environment(tmp_path: Path) -> None:
    custom = tmp_path / "sources.yaml"
    custom.write_text(
        "sources:\n  partners:\n    kind: rest\n    base_url_env: PARTNERS_URL\n    path: /v2/items\n"
        "    pagination: {style: page, page_param: p, page_size: 50}\n"
        "    auth: {kind: api_key, name: X-Key, secret_env: PARTNERS_KEY}\n"
    )
    source = load_sources(custom)["partners"]
    assert source.pagination().style == "page" and source.pagination().page_size == 50
    assert source.auth().kind == "none"  # no key in the environment: no auth header at all


def test_extract_dispatches_a_file_source_by_configuration(tmp_path: Path) -> None:
    # One command for every batch source: where the file is comes from the
    # sources file and the environment, not from the caller.
    export = tmp_path / "export.csv"
    export.write_text(
        "event_time,user_id,event_type\n2025-03-05 10:00:00,u_1,like\n2025-03-06 11:00:00,u_2,share\n"
    )
    bucket = str(tmp_path / "bucket")
    runner = CliRunner()
    two_days = ["--start", "2025-03-05", "--end", "2025-03-07"]
    landed = runner.invoke(
        main,
        ["extract", "--source", "app_export", *two_days, "--bucket", bucket],
        env={"APP_EXPORT_LOCATION": str(export)},
    )
    assert landed.exit_code == 0, landed.output
    *days, file = _lines(landed.stdout)
    assert [(r["source"], r["interval_start"], r["rows"]) for r in days] == [
        ("app_export", "2025-03-05", 1),
        ("app_export", "2025-03-06", 1),
    ]
    assert (file["rows_in"], file["landed"], file["quarantined"]) == (2, 2, 0)
    unset = runner.invoke(
        main,
        ["extract", "--source", "app_export", "--start", "2025-03-05", "--bucket", bucket],
        env={"APP_EXPORT_LOCATION": None},
    )
    assert unset.exit_code == 2 and "APP_EXPORT_LOCATION" in unset.output
    streamed = runner.invoke(
        main, ["extract", "--source", "events_stream", "--start", "2025-03-05", "--bucket", bucket]
    )
    assert streamed.exit_code == 2 and "extract-load stream" in streamed.output


def test_settings_are_read_and_validated_in_one_place() -> None:
    """One reader of the environment (ADR 0021): defaults, validation, and no secret in repr."""
    from extract_load.settings import settings

    defaults = settings({})
    assert defaults.lease_seconds == 60.0 and defaults.kafka_auth is None and defaults.results_file is None
    hidden = secrets.token_hex(8)
    configured = settings(
        {
            "EXTRACT_LOAD_LEASE_SECONDS": "5",
            "KAFKA_SASL_USERNAME": "svc",
            "KAFKA_SASL_PASSWORD": hidden,
            "EVENTS_API_TOKEN": hidden[::-1],
            "GOOGLE_SHEETS_API_ENDPOINT": "http://127.0.0.1:1/",
        }
    )
    assert configured.lease_seconds == 5.0
    assert (
        configured.kafka_auth is not None and configured.kafka_auth.client_config()["sasl.username"] == "svc"
    )
    assert configured.google_api_endpoints == {"sheets": "http://127.0.0.1:1/"}
    assert hidden not in repr(configured) and hidden[::-1] not in repr(configured)
    for bad in (
        {"EXTRACT_LOAD_LEASE_SECONDS": "0"},
        {"EXTRACT_LOAD_LEASE_SECONDS": "soon"},
        {"STATSD_PORT": "x"},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            settings(bad)
