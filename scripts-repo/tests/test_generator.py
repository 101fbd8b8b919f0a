from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa

from extract_load.demo.generator import GeneratorSpec, generate, write_parquet

SPEC = GeneratorSpec(dt.date(2025, 1, 6), days=70, users=800, seed=11)


def _table(spec: GeneratorSpec) -> pa.Table:
    return pa.concat_tables(list(generate(spec)))


def test_same_seed_same_stream_and_other_seed_differs() -> None:
    first, again = _table(SPEC), _table(SPEC)
    assert first.equals(again)
    other = _table(GeneratorSpec(SPEC.start, SPEC.days, SPEC.users, seed=12))
    assert not first.equals(other)


def test_columns_match_the_app_export(sample_export: Path) -> None:
    with sample_export.open() as handle:
        export_columns = next(csv.reader(handle))
    assert _table(SPEC).column_names == export_columns
    with_gender = _table(GeneratorSpec(SPEC.start, 7, 50, with_gender=True))
    assert with_gender.column_names == [*export_columns, "gender"]


def test_values_follow_the_export_rules(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    write_parquet(SPEC, path)
    con = duckdb.connect()
    rows = con.execute(
        f"""
        select event_type,
               count(*) filter (transaction_category is null) as no_category,
               count(*) filter (miles_amount is null) as no_miles,
               min(miles_amount), count(*)
        from '{path}' group by event_type order by event_type
        """
    ).fetchall()
    by_type = {r[0]: r[1:] for r in rows}
    assert set(by_type) == {"like", "miles_earned", "miles_redeemed", "reward_search", "share"}
    for social in ("like", "share"):
        _, _, _, total = by_type[social]
        assert by_type[social][:2] == (total, total)  # no category, no miles
    for moves_miles in ("miles_earned", "miles_redeemed"):
        no_category, no_miles, lowest, _ = by_type[moves_miles]
        assert (no_category, no_miles) == (0, 0) and lowest > 0
    # A user keeps one acquisition source and country; timestamps stay in range.
    assert con.execute(
        f"select count(*) from (select user_id from '{path}' group by user_id "
        "having count(distinct utm_source) > 1 or count(distinct country) > 1)"
    ).fetchone() == (0,)
    first, last = con.execute(f"select min(event_time), max(event_time) from '{path}'").fetchone()
    assert first.date() >= SPEC.start and last.date() < SPEC.start + dt.timedelta(days=SPEC.days)


def test_users_sign_up_go_quiet_come_back_and_churn(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    write_parquet(SPEC, path)
    con = duckdb.connect()
    con.execute(
        f"""
        create table weeks as
        select distinct user_id, date_trunc('week', event_time)::date as week from '{path}'
        """
    )
    signup_weeks = con.execute(
        "select count(distinct first_week) from (select min(week) as first_week from weeks group by user_id)"
    ).fetchone()[0]
    assert signup_weeks >= 8, "sign-ups should spread over the period"
    resurrected = con.execute(
        """
        select count(distinct user_id) from (
            select user_id, week, lag(week) over (partition by user_id order by week) as previous
            from weeks
        ) where week - previous > 7
        """
    ).fetchone()[0]
    assert resurrected > 0, "some users should go quiet for a week or more and return"
    churned = con.execute(
        "select count(*) from (select user_id, max(week) as last_week from weeks group by 1) "
        "where last_week < (select max(week) from weeks) - 21"
    ).fetchone()[0]
    assert churned > 0, "some users should stop for good"


def test_event_count_scales_with_the_target() -> None:
    for target in (10_000, 40_000):
        spec = GeneratorSpec.for_event_count(target, dt.date(2025, 1, 6), days=91)
        produced = sum(t.num_rows for t in generate(spec))
        assert 0.6 * target <= produced <= 1.6 * target, (target, produced)
