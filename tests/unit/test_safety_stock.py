"""Dynamic safety stock rules on hand-computed numbers: the forecast, the classes, two in a row, slow movers."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from domain.safety_stock import (
    DemandSignals,
    PastEvaluation,
    SafetyStockPolicy,
    Sale,
    SalesStats,
    SkuState,
    classify,
    evaluate,
    forecast_48h,
    is_over,
    is_slow_mover,
    over_in_a_row,
    sales_stats,
    suggested_quantity,
    turnover_days,
)

NOW = datetime(2026, 1, 20, 2, 0, tzinfo=UTC)
POLICY = SafetyStockPolicy()
HOUR = timedelta(hours=1)


def test_forecast_on_hand_computed_numbers() -> None:
    stats = SalesStats("BP-HOT", units_24h=50, units_7d=140, short_video_7d=140)  # 7-day mean 20/day
    signals = DemandSignals(cart_adds_24h=100, live_viewers=2000)
    f = forecast_48h(stats, signals, POLICY)
    assert f.history == pytest.approx(2 * (0.7 * 50 + 0.3 * 20))  # 82
    assert f.cart == pytest.approx(100 * 0.3)  # 30
    assert f.live == pytest.approx(2000 * 0.002 * 4)  # 16
    assert f.total == pytest.approx(128)


def test_forecast_weights_are_settings() -> None:
    stats = SalesStats("BP-HOT", units_24h=50, units_7d=140)
    signals = DemandSignals(cart_adds_24h=100, live_viewers=2000)
    policy = SafetyStockPolicy(w_hist=0.5, w_cart=2.0, w_live=0.0, recent_weight=1.0)
    # history 2 × 50 = 100 → 50; cart 30 → 60; live ignored
    assert forecast_48h(stats, signals, policy).total == pytest.approx(110)


def test_sales_windows_are_half_open_and_count_short_video_apart() -> None:
    sales = [
        Sale("A", "douyin", 5, NOW),  # now: both windows
        Sale("A", "k3", 3, NOW - timedelta(hours=24)),  # exactly 24 h ago: 7 days only
        Sale("A", "kuaishou", 2, NOW - timedelta(days=6, hours=23)),
        Sale("A", "douyin", 100, NOW - timedelta(days=7)),  # exactly 7 days ago: out
        Sale("A", "douyin", 100, NOW + timedelta(minutes=1)),  # the future: out
    ]
    assert sales_stats(sales, NOW, POLICY.short_video_channels) == {
        "A": SalesStats("A", units_24h=5, units_7d=10, short_video_7d=7)
    }


def test_a_is_the_short_video_top_n_and_b_the_next_thirty_percent() -> None:
    policy = SafetyStockPolicy(a_top_n=2, b_share=0.3)
    stats = {
        "S1": SalesStats("S1", units_7d=30, short_video_7d=30),
        "S2": SalesStats("S2", units_7d=20, short_video_7d=20),
        "S3": SalesStats("S3", units_7d=105, short_video_7d=5),  # sells most, but little on short video
        "S4": SalesStats("S4", units_7d=50),
        "S5": SalesStats("S5", units_7d=10),
        "S7": SalesStats("S7", units_7d=1),
    }
    # rest = S3 105, S4 50, S5 10, S7 1, S6 0 → ceil(0.3 × 5) = 2 are B
    assert classify(stats, ["S6"], policy) == {
        "S1": "A", "S2": "A", "S3": "B", "S4": "B", "S5": "C", "S6": "C", "S7": "C",
    }


def test_default_a_class_holds_twenty_skus_ties_by_code() -> None:
    stats = {f"BP-{i:02d}": SalesStats(f"BP-{i:02d}", units_7d=10, short_video_7d=10) for i in range(22)}
    classes = classify(stats, [], POLICY)
    assert sorted(s for s, c in classes.items() if c == "A") == [f"BP-{i:02d}" for i in range(20)]
    assert classes["BP-20"] == "B" and classes["BP-21"] == "C"  # ceil(0.3 × 2) = 1


def test_a_sku_with_no_short_video_sale_is_never_a() -> None:
    stats = {"K3-ONLY": SalesStats("K3-ONLY", units_7d=500)}
    assert classify(stats, [], POLICY) == {"K3-ONLY": "B"}


def test_over_is_strictly_more_than_one_and_a_half_times_the_threshold() -> None:
    assert not is_over(90, 60, POLICY)
    assert is_over(90.01, 60, POLICY)


def test_two_consecutive_hourly_evaluations() -> None:
    assert not over_in_a_row(True, NOW, (), POLICY)  # the first over evaluation waits
    assert over_in_a_row(True, NOW, (PastEvaluation(NOW - HOUR, True),), POLICY)
    assert not over_in_a_row(False, NOW, (PastEvaluation(NOW - HOUR, True),), POLICY)
    assert not over_in_a_row(True, NOW, (PastEvaluation(NOW - HOUR, False),), POLICY)
    assert not over_in_a_row(True, NOW, (PastEvaluation(NOW - 3 * HOUR, True),), POLICY)  # no run overnight
    three = SafetyStockPolicy(consecutive=3)
    assert not over_in_a_row(True, NOW, (PastEvaluation(NOW - HOUR, True),), three)
    assert over_in_a_row(True, NOW, (PastEvaluation(NOW - HOUR, True), PastEvaluation(NOW - 2 * HOUR, True)), three)
    assert not over_in_a_row(
        True, NOW, (PastEvaluation(NOW - HOUR, True), PastEvaluation(NOW - 2 * HOUR, False)), three
    )


def test_two_evaluations_minutes_apart_are_not_two_hourly_evaluations_in_a_row() -> None:
    minutes = timedelta(minutes=1)
    assert not over_in_a_row(True, NOW, (PastEvaluation(NOW - 5 * minutes, True),), POLICY)  # a second replica
    assert not over_in_a_row(True, NOW, (PastEvaluation(NOW - 44 * minutes, True),), POLICY)
    assert over_in_a_row(True, NOW, (PastEvaluation(NOW - 45 * minutes, True),), POLICY)
    # the extra run belongs to the hour before: it neither counts nor stops that hour from counting
    extra_then_hourly = (PastEvaluation(NOW - 57 * minutes, True), PastEvaluation(NOW - HOUR, True))
    assert over_in_a_row(True, NOW, extra_then_hourly, POLICY)
    assert over_in_a_row(True, NOW, (PastEvaluation(NOW - 3 * minutes, True), PastEvaluation(NOW - HOUR, True)), POLICY)
    # three in a row need three hours, however many runs fall inside them
    three = SafetyStockPolicy(consecutive=3)
    crowded = tuple(PastEvaluation(NOW - k * 10 * minutes, True) for k in range(1, 6))  # 10 … 50 minutes ago
    assert not over_in_a_row(True, NOW, crowded, three)
    # an extra run that was not over still breaks the row
    assert not over_in_a_row(True, NOW, (PastEvaluation(NOW - 5 * minutes, False), PastEvaluation(NOW - HOUR, True)),
                             POLICY)


def brake_pads(**changes: object) -> SkuState:
    """The case's brake pad: 10 a day for 6 days, then 50 in the last day (+400 %), carts and a live stream."""
    values: dict[str, object] = {
        "sku": "BP-HOT", "name": "陶瓷刹车片", "threshold": 60, "lead_time_days": 2, "available": 40,
        "stats": SalesStats("BP-HOT", units_24h=50, units_7d=110, short_video_7d=110),
        "signals": DemandSignals(cart_adds_24h=100, live_viewers=2000),
        "previous": (PastEvaluation(NOW - HOUR, True),),
    }
    values.update(changes)
    return SkuState(**values)  # type: ignore[arg-type]


def test_brake_pads_get_a_suggestion_naming_the_numbers() -> None:
    evaluation = evaluate(brake_pads(), "A", NOW, POLICY)
    # history 2 × (0.7 × 50 + 0.3 × 110/7) = 79.43; cart 30; live 16 → 125.43 > 1.5 × 60 = 90
    assert evaluation.forecast.total == pytest.approx(70 + 66 / 7 + 30 + 16)
    assert evaluation.over
    # margin ceil(125.43 / 2 × 2) = 126; qty ceil(125.43 + 126 − 40) = 212
    assert evaluation.suggestion is not None
    assert (evaluation.suggestion.quantity, evaluation.suggestion.margin) == (212, 126)
    reason = evaluation.suggestion.reason
    for text in ("125.4", "60 件", "150%", "90 件", "可用库存 40 件", "安全量 126 件", "建议补货 212 件", "近 24 小时销量 50 件"):
        assert text in reason, text


def test_no_suggestion_on_the_first_over_evaluation_or_while_one_is_open() -> None:
    assert evaluate(brake_pads(previous=()), "A", NOW, POLICY).suggestion is None
    assert evaluate(brake_pads(open_suggestion=True), "A", NOW, POLICY).suggestion is None


def test_no_suggestion_when_the_stock_already_covers_it() -> None:
    evaluation = evaluate(brake_pads(available=300), "A", NOW, POLICY)
    assert evaluation.over and evaluation.suggestion is None


def test_a_steady_sku_is_not_over() -> None:
    steady = brake_pads(stats=SalesStats("BP-STEADY", 10, 70, 70), signals=DemandSignals())
    evaluation = evaluate(steady, "A", NOW, POLICY)
    assert evaluation.forecast.total == pytest.approx(20) and not evaluation.over


def test_suggested_quantity_is_rounded_up() -> None:
    assert suggested_quantity(100.0, 30, 3) == (220, 150)  # 100 + 150 − 30
    assert suggested_quantity(10.2, 0, 0) == (11, 0)
    assert suggested_quantity(10.0, 50, 1) == (0, 5)


def test_slow_movers_turn_over_in_more_than_142_days() -> None:
    assert turnover_days(1420, 70) == 142.0
    assert not is_slow_mover(1420, 70, POLICY)
    assert is_slow_mover(1430, 70, POLICY)  # 143 days
    assert is_slow_mover(5, 0, POLICY) and math.isinf(turnover_days(5, 0))  # stock that did not sell at all
    assert not is_slow_mover(0, 0, POLICY)
