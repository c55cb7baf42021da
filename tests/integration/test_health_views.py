"""The health dashboard's figures against a seeded month (tests/integration/health_seed.py), on SQLite and
PostgreSQL, with the clock injected: each figure as worked out by hand from the seed."""

from __future__ import annotations

import pytest

from domain.health import range_starts
from integrations.db.engine import Database
from integrations.db.health_views import HealthFigures, HealthViews
from tests.integration.health_seed import NOW, D, H, M, consistency_scores, seed

approx = pytest.approx


async def figures(db: Database) -> HealthFigures:
    async with db.engine.connect() as conn:
        return await HealthViews(conn).figures(range_starts(NOW), NOW)


def minutes_by_state(f: HealthFigures, key: str) -> dict[str, tuple[int, float]]:
    return {s.state: (s.stays, round(s.mean_s / 60, 2)) for s in f.ranges[key].processing.by_state}


async def test_processing_time_per_state_and_paid_to_shipped(db: Database) -> None:
    await seed(db)
    f = await figures(db)
    today, week, month = (f.ranges[k].processing for k in ("today", "7d", "30d"))
    # X today: split 10, picking 10, quality check 10, packed 30 (its address change splits no stay)
    assert minutes_by_state(f, "today") == {"paid": (1, 0), "split": (1, 10), "picking": (1, 10),
                                            "quality_check": (1, 10), "packed": (1, 30)}
    assert (today.shipped, today.overall_s) == (1, approx(3600, abs=1))
    # + Y five days ago: 20, 20, 20, 60, then shipped 60 min and in transit 60 min; 签收异常 not left yet
    assert minutes_by_state(f, "7d") == {"paid": (2, 0), "split": (2, 15), "picking": (2, 15), "quality_check": (2, 15),
                                         "packed": (2, 45), "shipped": (1, 60), "in_transit": (1, 60)}
    assert (week.shipped, week.overall_s) == (2, approx((3600 + 7200) / 2, abs=1))
    # + Z twenty days ago: split 30, picking 60, then cancelled (never shipped: not in the paid → shipped mean)
    assert minutes_by_state(f, "30d")["split"] == (3, 20)
    assert minutes_by_state(f, "30d")["picking"] == (3, 30)
    assert (month.shipped, month.overall_s) == (2, approx(5400, abs=1))


async def test_state_jump_anomaly_rate(db: Database) -> None:
    await seed(db)
    f = await figures(db)
    today, week, month = (f.ranges[k].anomalies for k in ("today", "7d", "30d"))
    # today: X's 5 state changes (allocate … ship) and 1 refused illegal trigger → 1 of 6
    assert (today.refused, today.forced, today.attempts) == (1, 0, 6)
    assert today.rate == approx(100 / 6)
    # 7 days: + Y's 7 changes, one of them forced into 签收异常 → 2 of 13
    assert (week.refused, week.forced, week.attempts) == (1, 1, 13)
    assert week.rate == approx(200 / 13)
    # 30 days: + Z's 3 changes → 2 of 16
    assert (month.refused, month.forced, month.attempts) == (1, 1, 16)


async def test_first_contact_resolution_mean_and_median(db: Database) -> None:
    await seed(db)
    f = await figures(db)
    today, week = f.ranges["today"].first_contact, f.ranges["7d"].first_contact
    # today: a ¥50 refund approved at once (0 s), an address change relabelled after 15 min
    assert sorted(today.durations_s) == approx([0, 900], abs=1)
    assert (today.mean_s, today.median_s) == (approx(450, abs=1), approx(450, abs=1))
    # 7 days: + Y's relabel after 30 min and its ¥300 refund rejected after 90 min
    assert sorted(week.durations_s) == approx([0, 900, 1800, 5400], abs=1)
    assert (week.mean_s, week.median_s) == (approx(2025, abs=1), approx(1350, abs=1))
    assert f.open_inquiries == 1  # X's ¥300 refund still waits for a supervisor


async def test_orders_pushes_and_open_exceptions(db: Database) -> None:
    await seed(db)
    f = await figures(db)
    assert f.ranges["today"].orders_by_state == {"shipped": 1}
    assert f.ranges["7d"].orders_by_state == {"shipped": 1, "delivery_exception": 1}
    assert f.ranges["30d"].orders_by_state == {"shipped": 1, "delivery_exception": 1, "cancelled": 1}
    today, month = f.ranges["today"].pushes, f.ranges["30d"].pushes
    assert (today.total("delivered"), today.total("pending"), today.total("dead")) == (3, 1, 1)
    assert month.by_channel == {"wecom_chat": {"delivered": 3, "pending": 1, "dead": 1}, "dingtalk_chat": {"delivered": 2}}
    assert sorted((x.kind, x.opened_at) for x in f.open_incidents) == [
        ("logistics_conflict", NOW - 30 * H), ("out_of_stock", NOW - 30 * M)]  # the resolved one is not shown


async def test_consistency_score_none_until_computed_then_the_newest(db: Database) -> None:
    await seed(db)
    assert (await figures(db)).consistency is None
    async with consistency_scores(db, ("day", NOW - 3 * D, 99.9), ("day", NOW - H, 98.0), ("hour", NOW - 2 * H, 99.0),
                                  ("hour", NOW - H, 97.2), ("hour", NOW + H, 50.0)):
        f = await figures(db)
    assert f.consistency is not None
    assert (f.consistency.kind, f.consistency.window_end, f.consistency.score) == ("hour", NOW - H, approx(97.2))
    assert [p.score for p in f.ranges["today"].consistency] == [approx(99.0), approx(97.2)]  # hours of today
    assert [p.score for p in f.ranges["7d"].consistency] == [approx(99.9), approx(98.0)]  # days
