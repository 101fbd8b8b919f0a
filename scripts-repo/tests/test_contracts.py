"""A contract per source (issue 22): declared once, read by the extract, the load and the raw tables.

The events contract is one among others: the whole existing suite runs on
it unchanged. Here a second source, orders, has its own columns, types,
required fields and accepted values, and is extracted, classified and loaded
by its own contract, from a sources file of the team's own.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from conftest import team_config
from extract_load.cli import main
from extract_load.contract import EVENTS, ContractError, load_contract, parse_contract

ORDERS_CONTRACT = """\
name: orders
version: 1
time_column: ordered_at
primary_key: [order_id]
columns:
  - {name: order_id, type: string, required: true}
  - {name: ordered_at, type: timestamp, required: true}
  - {name: user_id, type: string, required: true, personal: true}
  - {name: status, type: string, required: true, accepted_values: [placed, paid, refunded]}
  - {name: amount, type: number, required: true, minimum: 0}
  - {name: items, type: integer}
  - {name: gift, type: boolean}
"""

ORDERS = """\
order_id,ordered_at,user_id,status,amount,items,gift
o-1,2025-03-05 09:00:00,u_1,placed,12.50,2,false
o-2,2025-03-05 10:00:00,u_2,PAID,99,1,true
o-3,2025-03-05 11:00:00,u_3,lost,5,1,false
o-4,2025-03-05 12:00:00,u_4,paid,-3,1,false
o-5,2025-03-05 13:00:00,u_5,paid,abc,1,false
o-6,2025-03-05 14:00:00,u_6,paid,7,two,false
o-7,2025-03-05 15:00:00,u_7,paid,7,1,maybe
o-8,2025-03-05 16:00:00,,paid,7,1,false
o-9,,u_9,paid,7,1,false
o-10,2025-03-06 08:00:00,u_10,refunded,12.50,2,
"""


@pytest.fixture
def team_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A team's own sources file, with its contract in `contracts/` beside it."""
    sources = team_config(
        tmp_path / "config",
        "sources:\n"
        "  orders:\n    kind: file\n    description: The shop's orders export.\n"
        "    location_env: ORDERS_LOCATION\n    contract: orders\n"
        "  app_export:\n    kind: file\n    location_env: APP_EXPORT_LOCATION\n",
        {"orders": ORDERS_CONTRACT},
    )
    monkeypatch.setenv("SOURCES_FILE", str(sources))
    return sources.parent


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_a_source_is_extracted_and_loaded_by_its_own_contract(team_sources: Path, tmp_path: Path) -> None:
    export = tmp_path / "orders.csv"
    export.write_text(ORDERS)
    bucket, warehouse = tmp_path / "bucket", tmp_path / "w.duckdb"
    runner = CliRunner()
    extracted = runner.invoke(
        main,
        ["extract-file", "--source", "orders", "--path", str(export), "--bucket", str(bucket),
         "--max-quarantine-ratio", "1"],
    )  # fmt: skip
    assert extracted.exit_code == 0, extracted.output
    summary = _lines(extracted.stdout)[-1]
    # The record with no ordered_at has no day: the extract quarantines it itself, by the contract's name.
    assert summary["reasons"] == {"missing_ordered_at": 1}, summary
    loaded = runner.invoke(
        main,
        ["load", "--source", "orders", "--start", "2025-03-05", "--end", "2025-03-07",
         "--bucket", str(bucket),
         "--warehouse", str(warehouse), "--max-quarantine-ratio", "1"],
    )  # fmt: skip
    assert loaded.exit_code == 0, loaded.output
    days = _lines(loaded.stdout)
    assert [(d["rows_in"], d["loaded"], d["quarantined"]) for d in days] == [(9, 2, 7), (1, 1, 0)]
    assert days[0]["reasons"] == {
        "unknown_status": 1,
        "negative_amount": 1,
        "non_numeric_amount": 1,
        "non_integer_items": 1,
        "non_boolean_gift": 1,
        "missing_user_id": 1,
        "missing_ordered_at": 1,
    }
    with duckdb.connect(str(warehouse), read_only=True) as con:
        columns = [c[0] for c in con.execute("describe raw.orders").fetchall()]
        assert columns[:7] == ["order_id", "ordered_at", "user_id", "status", "amount", "items", "gift"]
        assert "event_time" not in columns and "_event_time_local" in columns
        assert con.execute("select order_id from raw.orders order by 1").fetchall() == [
            ("o-1",), ("o-10",), ("o-2",)
        ]  # fmt: skip
        refused = dict(
            con.execute("select reason, count(*) from raw.orders_quarantine group by 1").fetchall()
        )
        assert sum(refused.values()) == 7 and refused["unknown_status"] == 1


def test_a_file_without_a_column_its_contract_requires_is_refused_whole(
    team_sources: Path, tmp_path: Path
) -> None:
    export = tmp_path / "orders.csv"
    export.write_text("order_id,ordered_at,user_id,status\no-1,2025-03-05 09:00:00,u_1,paid\n")
    result = CliRunner().invoke(
        main, ["extract-file", "--source", "orders", "--path", str(export), "--bucket", str(tmp_path / "b")]
    )
    assert result.exit_code == 1 and "required column(s) amount missing" in result.output
    # An events export is not an orders export, and the other way round: each is held to its own.
    events = tmp_path / "events.csv"
    events.write_text("event_time,user_id,event_type\n2025-03-05 10:00:00,u_1,like\n")
    assert CliRunner().invoke(
        main, ["extract-file", "--source", "orders", "--path", str(events), "--bucket", str(tmp_path / "b")]
    ).exit_code == 1  # fmt: skip
    assert CliRunner().invoke(
        main,
        ["extract-file", "--source", "app_export", "--path", str(events), "--bucket", str(tmp_path / "c")],
    ).exit_code == 0  # fmt: skip


def test_sources_list_shows_each_contract(team_sources: Path) -> None:
    result = CliRunner().invoke(main, ["sources", "list"])
    assert result.exit_code == 0, result.output
    listed = {line["source"]: line["contract"] for line in _lines(result.stdout)}
    assert listed["app_export"] == EVENTS.as_dict()
    orders = listed["orders"]
    assert orders["time_column"] == "ordered_at" and orders["primary_key"] == ["order_id"]
    assert {"name": "user_id", "type": "string", "required": True, "personal": True} in orders["columns"]


def test_event_types_override_only_a_contract_with_event_types(team_sources: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["load", "--source", "orders", "--start", "2025-03-05", "--bucket", str(tmp_path / "b"),
         "--warehouse", str(tmp_path / "w.duckdb"), "--event-types", "placed"],
    )  # fmt: skip
    assert result.exit_code == 2 and "event_type has no accepted values" in result.output


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"time_column": "t", "columns": [{"name": "t", "type": "timestamp"}], "colour": 1}, "unknown key"),
        ({"time_column": "t", "columns": [{"name": "t", "type": "datetime"}]}, "type 'datetime'"),
        ({"time_column": "t", "columns": [{"name": "u"}]}, "time_column 't' must be one of the columns"),
        ({"columns": [{"name": "t", "type": "timestamp"}]}, "time_column is required"),
        (
            {"time_column": "t", "columns": [{"name": "t", "type": "timestamp"}, {"name": "t"}]},
            "each name once",
        ),
        ({"time_column": "t", "columns": [{"name": "a;drop", "type": "timestamp"}]}, "column"),
        (
            {"time_column": "t", "primary_key": ["k"], "columns": [{"name": "t", "type": "timestamp"}]},
            "unknown",
        ),
    ],
)
def test_a_contract_that_cannot_be_used_is_refused_with_the_reason(document: dict, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        parse_contract(document, "contracts/x.yaml")


def test_the_packaged_events_contract_is_the_one_the_loader_always_had() -> None:
    assert load_contract("events") is EVENTS
    assert EVENTS.required_columns == ("event_time", "user_id", "event_type")
    assert EVENTS.undatable_reasons >= {
        "missing_event_time",
        "unparseable_event_time",
        "event_time_out_of_range",
    }
    with pytest.raises(ContractError, match="no contract named"):
        load_contract("nothing_here")


def test_a_column_the_contract_gains_is_added_to_the_raw_table_and_older_days_reload_into_it(
    team_sources: Path, tmp_path: Path
) -> None:
    """Schema drift: a source starts sending a column; the contract names it; nothing is lost or refused."""
    contract = team_sources / "contracts" / "orders.yaml"
    first = tmp_path / "first.csv"
    first.write_text(ORDERS.splitlines()[0] + "\n" + ORDERS.splitlines()[1] + "\n")
    later = tmp_path / "later.csv"
    later.write_text(
        ORDERS.splitlines()[0] + ",channel\n" + "o-20,2025-03-06 09:00:00,u_2,paid,4,1,false,app\n"
    )
    bucket, warehouse = str(tmp_path / "bucket"), str(tmp_path / "w.duckdb")
    runner = CliRunner()

    def land_and_load(path: Path, day: str) -> None:
        for args in (
            ["extract-file", "--source", "orders", "--path", str(path), "--bucket", bucket, "--start", day],
            ["load", "--source", "orders", "--start", day, "--bucket", bucket, "--warehouse", warehouse],
        ):
            result = runner.invoke(main, args)
            assert result.exit_code == 0, result.output

    land_and_load(first, "2025-03-05")
    contract.write_text(
        ORDERS_CONTRACT.replace("version: 1", "version: 2") + "  - {name: channel, type: string}\n"
    )
    land_and_load(later, "2025-03-06")
    with duckdb.connect(warehouse, read_only=True) as con:
        rows = con.execute(
            "select order_id, channel, _record->>'channel' from raw.orders order by 1"
        ).fetchall()
    assert rows == [("o-1", None, None), ("o-20", "app", "app")]
