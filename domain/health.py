"""The health dashboard's rules (订单健康度): the time ranges, the yellow line, age buckets, mean and median."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from domain.clock import local

CONSISTENCY_YELLOW_BELOW = 98.5  # the case's line (the default of CONSISTENCY__THRESHOLD): a score under it is yellow
RANGES = ("today", "7d", "30d")
RANGE_LABELS = {"today": "今日", "7d": "近 7 天", "30d": "近 30 天"}
# the states an order is in while the business (not the customer, not the courier) has it: paid → shipped
PROCESSING_STATES = ("paid", "split", "picking", "quality_check", "packed")
# after-sale states that answer the customer's request: the decision (同意/拒绝) or what follows it
AFTERSALE_ANSWERED = ("approved", "rejected", "refunded", "replaced", "closed")
AGE_BUCKETS = (("lt1h", "1 小时内", 1), ("1to4h", "1–4 小时", 4), ("4to24h", "4–24 小时", 24), ("ge24h", "超过 24 小时", None))


def range_starts(now: datetime) -> dict[str, datetime]:
    """today: since midnight China time; 7d and 30d: the last 7 × 24 and 30 × 24 hours."""
    midnight = local(now).replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    return {"today": midnight, "7d": now - timedelta(days=7), "30d": now - timedelta(days=30)}


def end_of_day(now: datetime) -> datetime:
    """The next midnight in China time, as UTC: when a dashboard session ends."""
    return range_starts(now)["today"] + timedelta(days=1)


def is_yellow(score: float | None, below: float = CONSISTENCY_YELLOW_BELOW) -> bool:
    return score is not None and score < below


def age_bucket(opened_at: datetime, now: datetime) -> str:
    hours = (now - opened_at).total_seconds() / 3600
    for key, _, limit in AGE_BUCKETS:
        if limit is None or hours < limit:
            return key
    raise AssertionError("the last bucket has no limit")


def mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def rate(part: int, whole: int) -> float | None:
    """part ÷ whole in percent; None when there is nothing to divide by."""
    return part / whole * 100 if whole else None
