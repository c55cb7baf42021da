"""The demo's seeded day lies within today (China time) and before the moment the demo starts, at any hour."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.demo_data import PATHS
from bot.demo_seed import CHINA, seeded_day


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)))
def test_every_seeded_step_is_today_and_already_past(naive: datetime) -> None:
    now = naive.replace(tzinfo=UTC)
    midnight = (now + CHINA).replace(hour=0, minute=0, second=0, microsecond=0) - CHINA
    start, span, gap = seeded_day(now)
    last = start + span + gap * max(len(p) for p in PATHS.values())
    assert midnight <= start and span > timedelta(0) and gap > timedelta(0)
    assert last <= now
