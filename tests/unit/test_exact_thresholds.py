"""Safety-stock lines at their exact values: a 48-hour forecast of exactly 150 % of the replenishment threshold is
not over it, however the forecast's parts add up in floating point; two evaluations exactly `max_gap` apart
still chain, one second more does not. (The refund lines are in test_aftersale_totals.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.safety_stock import (
    DemandSignals,
    PastEvaluation,
    SafetyStockPolicy,
    SalesStats,
    SkuState,
    evaluate,
    forecast_48h,
    over_in_a_row,
)

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
POLICY = SafetyStockPolicy()
SECOND = timedelta(seconds=1)


def state(stats: SalesStats, signals: DemandSignals | None = None) -> SkuState:
    """A SKU with a threshold of 60 (the line is 90), already over an hour ago, with no stock: one more over
    evaluation suggests replenishment."""
    return SkuState("BP-HOT", "陶瓷刹车片", threshold=60, lead_time_days=2, available=0, stats=stats,
                    signals=signals or DemandSignals(), previous=(PastEvaluation(NOW - timedelta(hours=1), True),))


@pytest.mark.parametrize(
    ("stats", "signals"),
    [
        (SalesStats("BP-HOT", units_24h=0, units_7d=1050, short_video_7d=1050), DemandSignals()),  # 2 × 0.3 × 150
        (SalesStats("BP-HOT"), DemandSignals(cart_adds_24h=300)),  # 300 × 0.3
        (SalesStats("BP-HOT"), DemandSignals(live_viewers=11_250)),  # 11,250 × 0.002 × 4
    ],
    ids=["history", "cart", "live"],
)
def test_a_forecast_of_exactly_150_percent_is_not_over(stats: SalesStats, signals: DemandSignals) -> None:
    assert forecast_48h(stats, signals, POLICY).total == pytest.approx(90)
    evaluation = evaluate(state(stats, signals), "A", NOW, POLICY)
    assert (evaluation.over, evaluation.suggestion) == (False, None)


def test_one_unit_above_150_percent_is_over_and_suggests() -> None:
    stats = SalesStats("BP-HOT", units_24h=0, units_7d=1057, short_video_7d=1057)  # 90.6
    evaluation = evaluate(state(stats), "A", NOW, POLICY)
    assert evaluation.over and evaluation.suggestion is not None


def test_evaluations_exactly_max_gap_apart_chain_and_a_second_more_does_not() -> None:
    assert over_in_a_row(True, NOW, (PastEvaluation(NOW - POLICY.max_gap, True),), POLICY)
    assert not over_in_a_row(True, NOW, (PastEvaluation(NOW - POLICY.max_gap - SECOND, True),), POLICY)
