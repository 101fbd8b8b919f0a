"""Re-deliveries of raw days, as the loader makes them, and random sequences of them.

The raw layer's contract (scripts-repo's loader, docs/adr/0004): a load
replaces one local day of `raw.events` whole, and stamps every row with the
load's id, a hash of the day's manifest: a day delivered again with any
difference gets a new id, an identical one keeps its id. `RawDays` writes that
contract into DuckDB or PostgreSQL (the loader itself writes DuckDB and
BigQuery only); `random_operations` draws what sources do to their past: new
days, and old days delivered again with events removed, corrected, added,
duplicated, arriving late for an earlier day, or emptied.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]

COLUMNS = (
    "event_time",
    "user_id",
    "event_type",
    "transaction_category",
    "miles_amount",
    "platform",
    "utm_source",
    "country",
    "gender",
)
KINDS = [
    ("miles_earned", ["dining", "ecommerce", "shopping"], [120.0, 35.0, 516.0, 8.5]),
    ("miles_redeemed", ["flight", "hotel"], [1500.0, 2250.0, 640.0]),
    ("reward_search", ["apple", "shopee"], [None]),
    ("share", [None], [None]),
    ("like", [None], [None]),
]


# Values a correction may give a field.
CORRECTIONS: dict[str, list[str | None]] = {
    "platform": ["ios", "web"],
    "utm_source": ["facebook", "organic"],
    "country": ["PH", "SG"],
    "gender": [None, "female"],
}


def load_id(day: dt.date, rows: list[Row]) -> str:
    """What the loader's id depends on: the day and the exact records delivered."""
    body = json.dumps([day.isoformat(), [[r[c] for c in COLUMNS] for r in rows]])
    return hashlib.sha256(body.encode()).hexdigest()[:16]


@dataclass
class RawDays:
    """Writes whole days into raw.events with the loader's semantics, through a DB-API connection."""

    connect: Callable[[], Any]
    placeholder: str = "?"
    clock: dt.datetime = field(default_factory=lambda: dt.datetime(2025, 6, 1, 1))
    landed_at: dict[str, dt.datetime] = field(default_factory=dict)

    def replace_day(self, day: dt.date, rows: list[Row]) -> None:
        self.clock += dt.timedelta(hours=1)
        identity = load_id(day, rows)
        # An identical delivery keeps the manifest it had, so its landing time too.
        landed_at = self.landed_at.setdefault(identity, self.clock)
        p = self.placeholder
        values = ", ".join([p] * 15)
        con = self.connect()
        try:
            cur = con.cursor()
            cur.execute(f"delete from raw.events where _interval_start = {p}", [day])
            if rows:
                cur.executemany(
                    f"insert into raw.events values ({values})",
                    [
                        [
                            *(r[c] for c in COLUMNS),
                            dt.datetime.fromisoformat(r["event_time"]),
                            json.dumps(r),
                            day,
                            f"raw/events/dt={day}/part-00000.jsonl.gz",
                            identity,
                            landed_at,
                        ]
                        for r in rows
                    ],
                )
            con.commit()
        finally:
            con.close()


def _event(rng: random.Random, day: dt.date, user: str, profile: Row) -> Row:
    kind, categories, amounts = rng.choice(KINDS)
    amount = rng.choice(amounts)
    when = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=rng.randint(0, 86_399))
    return {
        "event_time": when.isoformat(sep=" "),
        "user_id": user,
        "event_type": kind,
        "transaction_category": rng.choice(categories),
        "miles_amount": None if amount is None else f"{amount}",
        "platform": rng.choice(["ios", "android", "web"]),
        "utm_source": profile["utm_source"],
        "country": profile["country"],
        "gender": profile["gender"],
    }


@dataclass
class Source:
    """What a source currently says about each day it has delivered."""

    rng: random.Random
    first_day: dt.date = dt.date(2025, 3, 3)
    days: dict[dt.date, list[Row]] = field(default_factory=dict)
    users: dict[str, Row] = field(default_factory=dict)

    def profile(self, user: str) -> Row:
        if user not in self.users:
            self.users[user] = {
                "utm_source": self.rng.choice(["google", "organic", "tiktok", "referral"]),
                "country": self.rng.choice(["SG", "MY", "TH"]),
                "gender": self.rng.choice([None, None, "female", "male"]),
            }
        return self.users[user]

    def some_users(self, count: int) -> list[str]:
        known = list(self.users)
        picked = [self.rng.choice(known) for _ in range(count) if known and self.rng.random() < 0.7]
        fresh = [f"u_{len(self.users) + i:03d}" for i in range(count - len(picked))]
        return sorted(set(picked + fresh))

    def events(self, day: dt.date, count: int) -> list[Row]:
        return [_event(self.rng, day, user, self.profile(user)) for user in self.some_users(count)
                for _ in range(self.rng.randint(1, 3))]  # fmt: skip


@dataclass(frozen=True)
class Operation:
    description: str
    day: dt.date
    rows: list[Row]


def random_operations(seed: int, steps: int, start_days: int = 10) -> tuple[Source, list[Operation]]:
    """A first delivery of `start_days` days, then `steps` random operations on the source."""
    rng = random.Random(seed)
    source = Source(rng)
    operations = []
    for offset in range(start_days):
        day = source.first_day + dt.timedelta(days=offset)
        source.days[day] = source.events(day, rng.randint(3, 8))
        operations.append(Operation(f"deliver {day}", day, source.days[day]))
    chosen = []
    for _ in range(steps):
        chosen.append(_random_change(rng, source))
    return source, [*operations, *chosen]


def _random_change(rng: random.Random, source: Source) -> Operation:
    known = sorted(source.days)
    kind = rng.choice(
        ["new_day", "remove", "correct", "add", "duplicate", "late", "empty", "same_again", "earlier_first"]
    )
    day = rng.choice(known)
    rows = [dict(r) for r in source.days[day]]
    if kind == "new_day":
        day = known[-1] + dt.timedelta(days=rng.choice([1, 1, 2, 9]))
        rows = source.events(day, rng.randint(2, 8))
    elif kind == "remove" and rows:
        for _ in range(rng.randint(1, max(1, len(rows) // 2))):
            rows.pop(rng.randrange(len(rows)))
    elif kind == "correct" and rows:
        for row in rng.sample(rows, rng.randint(1, len(rows))):
            field_name = rng.choice(
                ["miles_amount", "platform", "utm_source", "country", "gender", "event_time"]
            )
            if field_name == "miles_amount":
                row["miles_amount"] = f"{rng.choice([1.0, 42.0, 99.5, 3000.0])}"
            elif field_name == "event_time":
                row["event_time"] = (
                    dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=rng.randint(0, 86_399))
                ).isoformat(sep=" ")
            else:
                row[field_name] = rng.choice(CORRECTIONS[field_name])
    elif kind == "add":
        rows += source.events(day, rng.randint(1, 4))
    elif kind == "duplicate" and rows:
        rows += [dict(r) for r in rng.sample(rows, rng.randint(1, len(rows)))]
    elif kind == "late":
        # An event that happened days ago arrives now: its own (older) day is delivered again.
        day = known[0] - dt.timedelta(days=rng.choice([1, 3, 8])) if rng.random() < 0.3 else day
        rows = [dict(r) for r in source.days.get(day, [])] + source.events(day, 1)
    elif kind == "empty":
        rows = []
    elif kind == "earlier_first" and source.users:
        # A known user's event on a day before their first: their acquisition changes.
        user = rng.choice(sorted(source.users))
        first = min(d for d, rs in source.days.items() if any(r["user_id"] == user for r in rs)) \
            if any(r["user_id"] == user for rs in source.days.values() for r in rs) else known[0]  # fmt: skip
        day = first - dt.timedelta(days=rng.choice([0, 1, 6, 13]))
        extra = _event(rng, day, user, {"utm_source": "referral", "country": "ID", "gender": "male"})
        rows = [dict(r) for r in source.days.get(day, [])] + [extra]
    source.days[day] = rows
    return Operation(f"{kind} {day} ({len(rows)} rows)", day, rows)
