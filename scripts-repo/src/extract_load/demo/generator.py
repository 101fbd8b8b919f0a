"""Synthetic loyalty-app event stream with a realistic user lifecycle.

Growth accounting and retention are only worth testing on data where users sign
up over time, go quiet, come back and churn, so the generator simulates each
user's lifecycle day by day instead of drawing independent rows. Everything is
vectorised per day with numpy, which keeps 10M+ events within a few minutes,
and every draw comes from one seeded generator, so a seed fixes the stream.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

EVENT_TYPES = np.array(["miles_earned", "reward_search", "miles_redeemed", "share", "like"])
EVENT_TYPE_WEIGHTS = np.array([0.56, 0.15, 0.14, 0.10, 0.05])
CATEGORIES = {
    "miles_earned": (["ecommerce", "dining", "shopping"], [0.41, 0.30, 0.29]),
    "miles_redeemed": (["flight", "hotel"], [0.61, 0.39]),
    "reward_search": (["apple", "lululemon", "shopee"], [0.34, 0.34, 0.32]),
}
UTM_SOURCES = np.array(["facebook", "google", "referral", "organic", "tiktok"])
UTM_WEIGHTS = np.array([0.30, 0.20, 0.18, 0.18, 0.14])
COUNTRIES = np.array(["SG", "MY", "PH", "ID", "TH"])
COUNTRY_WEIGHTS = np.array([0.27, 0.23, 0.18, 0.16, 0.16])
PLATFORMS = np.array(["ios", "android", "web"])
GENDERS = np.array(["female", "male", "non_binary", "undisclosed"])
GENDER_WEIGHTS = np.array([0.48, 0.46, 0.02, 0.04])
# Activity peaks at lunch and in the evening, local time.
HOUR_WEIGHTS = np.array(
    [1, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 7, 9, 8, 6, 6, 6, 7, 9, 10, 10, 8, 5, 3], dtype=float
)

# Daily lifecycle transition probabilities.
P_GO_QUIET = 0.05  # active -> dormant
P_COME_BACK = 0.04  # dormant -> active
P_CHURN_ACTIVE = 0.006  # active -> churned (never returns)
P_CHURN_DORMANT = 0.02  # dormant -> churned

NOT_SIGNED_UP, ACTIVE, DORMANT, CHURNED = 0, 1, 2, 3


@dataclass(frozen=True)
class GeneratorSpec:
    """What to generate. `users` is how many sign up over the whole period."""

    start: dt.date
    days: int
    users: int
    seed: int = 42
    with_gender: bool = False
    events_per_active_day: float = 2.5

    @classmethod
    def for_event_count(
        cls, events: int, start: dt.date, days: int, seed: int = 42, with_gender: bool = False
    ) -> GeneratorSpec:
        """Pick a user count that yields roughly `events` events over `days`."""
        # Measured: an average user is active on ~0.12 of the days after signup,
        # lives ~half the period, and emits events_per_active_day + 1 per active day.
        per_user = max(1.0, 0.12 * (days / 2) * 3.5)
        return cls(start, days, max(10, int(events / per_user)), seed, with_gender)


def _user_ids(count: int) -> np.ndarray:
    width = max(4, len(str(count)))
    return np.array([f"u_{i:0{width}d}" for i in range(1, count + 1)])


def generate(spec: GeneratorSpec) -> Iterator[pa.Table]:
    """Yield one Arrow table of events per simulated day, in time order."""
    rng = np.random.default_rng(spec.seed)
    n = spec.users
    user_ids = _user_ids(n)

    # A seed cohort exists on day 0; the rest sign up with accelerating growth.
    seed_cohort = max(1, n // 10)
    growth = np.exp(np.linspace(0.0, 1.5, spec.days))
    signup_day = np.concatenate(
        [
            np.zeros(seed_cohort, dtype=np.int64),
            rng.choice(spec.days, size=n - seed_cohort, p=growth / growth.sum()),
        ]
    )
    utm = rng.choice(UTM_SOURCES, size=n, p=UTM_WEIGHTS)
    country = rng.choice(COUNTRIES, size=n, p=COUNTRY_WEIGHTS)
    gender = rng.choice(GENDERS, size=n, p=GENDER_WEIGHTS)
    # Engagement: share of days on which an awake user opens the app.
    engagement = rng.beta(2.0, 5.0, size=n)
    # Each user prefers one platform but sometimes uses the others.
    home_platform = rng.integers(0, len(PLATFORMS), size=n)

    state = np.full(n, NOT_SIGNED_UP, dtype=np.int8)
    seconds_in_day = 86_400
    hour_p = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()

    for day in range(spec.days):
        date = spec.start + dt.timedelta(days=day)
        u = rng.random(n)
        active = state == ACTIVE
        dormant = state == DORMANT
        new_state = state.copy()
        new_state[active & (u < P_CHURN_ACTIVE)] = CHURNED
        new_state[active & (u >= P_CHURN_ACTIVE) & (u < P_CHURN_ACTIVE + P_GO_QUIET)] = DORMANT
        new_state[dormant & (u < P_CHURN_DORMANT)] = CHURNED
        new_state[dormant & (u >= P_CHURN_DORMANT) & (u < P_CHURN_DORMANT + P_COME_BACK)] = ACTIVE
        new_state[signup_day == day] = ACTIVE
        state = new_state

        # Users of the seed cohort already existed; only real sign-ups open the app that day.
        signing_up = (signup_day == day) & (np.arange(n) >= seed_cohort)
        opens_app = (state == ACTIVE) & ((rng.random(n) < engagement) | signing_up)
        who = np.flatnonzero(opens_app)
        if who.size == 0:
            continue
        counts = 1 + rng.poisson(spec.events_per_active_day, size=who.size)
        idx = np.repeat(who, counts)
        total = idx.size

        types = rng.choice(EVENT_TYPES, size=total, p=EVENT_TYPE_WEIGHTS)
        category = np.full(total, None, dtype=object)
        miles = np.full(total, np.nan)
        for event_type, (cats, weights) in CATEGORIES.items():
            mask = types == event_type
            k = int(mask.sum())
            if k:
                category[mask] = rng.choice(cats, size=k, p=weights)
        earned = types == "miles_earned"
        redeemed = types == "miles_redeemed"
        miles[earned] = np.clip(np.round(rng.lognormal(6.0, 0.6, int(earned.sum()))), 1, 5000)
        miles[redeemed] = np.clip(np.round(rng.lognormal(7.3, 0.5, int(redeemed.sum()))), 50, 20000)

        platform_idx = np.where(
            rng.random(total) < 0.7, home_platform[idx], rng.integers(0, len(PLATFORMS), total)
        )
        hour = rng.choice(24, size=total, p=hour_p)
        offset_us = (hour * 3600 + rng.integers(0, 3600, size=total)) * 1_000_000 + rng.integers(
            0, 1_000_000, size=total
        )
        offset_us = np.minimum(offset_us, seconds_in_day * 1_000_000 - 1)
        day_start = np.datetime64(date.isoformat(), "us")
        event_time = day_start + offset_us.astype("timedelta64[us]")
        order = np.argsort(event_time, kind="stable")

        columns = {
            "event_time": pa.array(event_time[order], type=pa.timestamp("us")),
            "user_id": pa.array(user_ids[idx][order]),
            "event_type": pa.array(types[order]),
            "transaction_category": pa.array(category[order], type=pa.string()),
            "miles_amount": pa.array(miles[order], from_pandas=True, type=pa.float64()),
            "platform": pa.array(PLATFORMS[platform_idx][order]),
            "utm_source": pa.array(utm[idx][order]),
            "country": pa.array(country[idx][order]),
        }
        if spec.with_gender:
            columns["gender"] = pa.array(gender[idx][order])
        yield pa.table(columns)


def write_parquet(spec: GeneratorSpec, path: Path) -> int:
    """Write the stream to one Parquet file, a day per row group; returns the event count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    written = 0
    writer: pq.ParquetWriter | None = None
    try:
        for table in generate(spec):
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
            writer.write_table(table)
            written += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise ValueError(f"the spec {spec} generates no events")
    tmp.replace(path)
    return written
