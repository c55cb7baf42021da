"""The consistency score's rules: min ÷ max × 100, the windows scored, one warning per drop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from domain.consistency import DROP, RECOVER, ChannelTally, alert_step, ratio, windows_due

T = datetime(2026, 3, 2, 2, tzinfo=UTC)


def test_the_hour_scored_is_the_last_whole_one_past_the_lag_and_its_day() -> None:
    hour, day = windows_due(datetime(2026, 3, 2, 3, 20, tzinfo=UTC), timedelta(minutes=15))  # 11:20 in China
    assert (hour.start, hour.end) == (datetime(2026, 3, 2, 2, tzinfo=UTC), datetime(2026, 3, 2, 3, tzinfo=UTC))
    assert (day.start, day.end) == (datetime(2026, 3, 1, 16, tzinfo=UTC), hour.end)  # midnight in China
    assert hour.label() == "03-02 10:00–11:00"


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=5))
def test_the_score_is_min_over_max_and_never_above_100(counts: list[int]) -> None:
    score = ratio(counts)
    assert 0 <= score <= 100
    assert score == (100.0 if max(counts) == 0 else min(counts) / max(counts) * 100)


@given(st.lists(st.floats(min_value=0, max_value=100), min_size=1, max_size=30))
def test_one_warning_per_drop_and_one_note_per_recovery(scores: list[float]) -> None:
    low_since, told = None, []
    for i, score in enumerate(scores):
        low_since, step = alert_step(low_since, score, 98.5, T + timedelta(hours=i))
        told.append(step)
        assert (low_since is not None) == (score < 98.5)
    drops = sum(1 for i, s in enumerate(scores) if s < 98.5 and (i == 0 or scores[i - 1] >= 98.5))
    assert told.count(DROP) == drops
    assert told.count(RECOVER) in (drops, drops - 1)


def test_a_count_only_channel_says_how_many_are_missing_without_ids() -> None:
    text = ChannelTally("douyin", 500, 490).gap_text(5)
    assert text == "抖店 500 单，订单助手 490 单；订单助手缺 10 单（抖店只给数量，无单号明细）"
    assert ChannelTally("k3", 10, 12).gap_text(5) == "金蝶K3 10 单，订单助手 12 单；金蝶K3少 2 单"
