"""Dynamic safety stock (动态安全库存): A/B/C classes, the rolling 48-hour forecast, when to suggest
replenishment and freeze the non-core channels, and slow movers. The handler reads numbers; this decides.

Classes, from the last 7 days of sales (top-level orders, paid or later, not cancelled):
  A = the `a_top_n` (20) SKUs with the most units sold on the short-video channels (douyin, kuaishou);
      a SKU with no short-video sale is never A.
  B = of the remaining SKUs ranked by 7-day units on all channels, the first ceil(`b_share` × how many
      remain) (30 %), counting only SKUs that sold at least one unit.
  C = the rest (including SKUs in stock or registered that sold nothing).
  Ties rank by all-channel units, then by SKU code, so a class never depends on row order.

The forecast of units sold in the next 48 hours (A-class only):
  history = 2 × (r × units_24h + (1 − r) × units_7d / 7)      r = `recent_weight` (0.7)
  cart    = cart_adds_24h × `cart_conversion` (0.3)
  live    = live_viewers_now × `viewer_conversion` (0.002 per viewer-hour) × `live_hours` (4)
  forecast_48h = `w_hist` × history + `w_cart` × cart + `w_live` × live          (weights 1, 1, 1)
  `history` is a one-step exponential smoothing of the daily rate: the last day counts 70 %, the 7-day mean
  30 %, so a short-video spike shows within the hour without one quiet day erasing the week. `cart` is
  the share of the last day's cart adds expected to turn into orders; `live` is what the viewers of a
  broadcast running now buy over the live hours expected within the 48 hours. A live_viewers figure
  counts while it is fresh (the handler drops readings older than `live_fresh_minutes`).

The decision, each hourly evaluation:
  over    = forecast_48h > `over_ratio` (1.5) × replenish_threshold
  suggest = over now and in the `consecutive` − 1 evaluations before it (2 in a row), each at least `min_gap`
            (45 min) and at most `max_gap` (90 min) after the one before — two runs minutes apart are one
            hour's, not two hours in a row — no suggestion for the SKU still open, and a quantity > 0
  margin  = ceil(forecast_48h / 2 × lead_time_days)   what sells while the goods are on their way
  qty     = ceil(forecast_48h + margin − available)   available = on hand − reserved, across all stores
  Reserved stock is already sold (those orders are in the history), so it does not count against the need.

Slow movers: turnover_days = on_hand / (units_7d / 7) > `slow_mover_days` (142); stock with no sale in
7 days has an infinite turnover and is a slow mover too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.commands import Command

CLASSES = ("A", "B", "C")
SIGNAL_KINDS = ("cart_add", "live_viewers")


@dataclass(frozen=True)
class SafetyStockPolicy:
    """Every tunable number of the model; built from settings once."""

    short_video_channels: tuple[str, ...] = ("douyin", "kuaishou")
    a_top_n: int = 20
    b_share: float = 0.3
    recent_weight: float = 0.7
    w_hist: float = 1.0
    w_cart: float = 1.0
    w_live: float = 1.0
    cart_conversion: float = 0.3
    viewer_conversion: float = 0.002
    live_hours: float = 4.0
    live_fresh_minutes: int = 120
    over_ratio: float = 1.5
    consecutive: int = 2
    min_gap: timedelta = timedelta(minutes=45)
    max_gap: timedelta = timedelta(minutes=90)
    slow_mover_days: float = 142.0
    core_channels: tuple[str, ...] = ("douyin", "miniprogram")
    non_core_channels: tuple[str, ...] = ("k3", "kuaishou", "wholesale")


@dataclass(frozen=True)
class Sale:
    sku: str
    channel: str
    qty: int
    at: datetime


@dataclass(frozen=True)
class SalesStats:
    sku: str
    units_24h: int = 0
    units_7d: int = 0
    short_video_7d: int = 0

    @property
    def daily_mean_7d(self) -> float:
        return self.units_7d / 7


def sales_stats(sales: Iterable[Sale], now: datetime, short_video_channels: Sequence[str]) -> dict[str, SalesStats]:
    """Units per SKU sold in (now − 24 h, now] and (now − 7 d, now], and the short-video share of the 7 days."""
    day, week = now - timedelta(hours=24), now - timedelta(days=7)
    totals: dict[str, list[int]] = {}
    for sale in sales:
        if not week < sale.at <= now:
            continue
        counts = totals.setdefault(sale.sku, [0, 0, 0])
        counts[1] += sale.qty
        if sale.at > day:
            counts[0] += sale.qty
        if sale.channel in short_video_channels:
            counts[2] += sale.qty
    return {sku: SalesStats(sku, *counts) for sku, counts in totals.items()}


def classify(stats: Mapping[str, SalesStats], skus: Iterable[str], policy: SafetyStockPolicy) -> dict[str, str]:
    """A/B/C for every SKU in `skus` or `stats` (see the module docstring)."""
    none = SalesStats("")
    everyone = sorted(set(skus) | set(stats))

    def units(sku: str) -> SalesStats:
        return stats.get(sku, none)

    by_short_video = sorted(everyone, key=lambda s: (-units(s).short_video_7d, -units(s).units_7d, s))
    a = [s for s in by_short_video if units(s).short_video_7d > 0][: policy.a_top_n]
    rest = sorted((s for s in everyone if s not in set(a)), key=lambda s: (-units(s).units_7d, s))
    b = [s for s in rest[: math.ceil(policy.b_share * len(rest))] if units(s).units_7d > 0]
    classes = dict.fromkeys(everyone, "C")
    classes.update(dict.fromkeys(b, "B"))
    classes.update(dict.fromkeys(a, "A"))
    return classes


@dataclass(frozen=True)
class DemandSignals:
    cart_adds_24h: int = 0
    live_viewers: int = 0  # the latest fresh reading, summed over channels


@dataclass(frozen=True)
class Forecast:
    history: float
    cart: float
    live: float
    total: float


def forecast_48h(stats: SalesStats, signals: DemandSignals, policy: SafetyStockPolicy) -> Forecast:
    r = policy.recent_weight
    history = 2 * (r * stats.units_24h + (1 - r) * stats.daily_mean_7d)
    cart = signals.cart_adds_24h * policy.cart_conversion
    live = signals.live_viewers * policy.viewer_conversion * policy.live_hours
    total = policy.w_hist * history + policy.w_cart * cart + policy.w_live * live
    return Forecast(history, cart, live, total)


def is_over(forecast: float, threshold: int, policy: SafetyStockPolicy) -> bool:
    """Strictly more than the line; the 1e-9 keeps a forecast that is exactly 150 % in decimals (2 × 0.3 × 150
    sums to 90.00000000000001 in floats) on the line, as suggested_quantity's rounding does."""
    return forecast > policy.over_ratio * threshold + 1e-9


@dataclass(frozen=True)
class PastEvaluation:
    at: datetime
    over: bool


def over_in_a_row(over_now: bool, now: datetime, previous: Sequence[PastEvaluation], policy: SafetyStockPolicy) -> bool:
    """This evaluation and the `consecutive` − 1 before it (newest first) were all over, each at least `min_gap`
    and at most `max_gap` after the one before: an extra run minutes after the hourly one (a second replica, a
    `jobs run` by hand) is the same hour, not the next, and a job that did not run overnight does not chain
    yesterday to today. An extra run that was not over still breaks the row."""
    needed = policy.consecutive - 1
    if not over_now:
        return False
    later = now
    for past in previous:
        if needed == 0:
            break
        gap = later - past.at
        if not past.over or gap > policy.max_gap:
            return False
        if gap >= policy.min_gap:
            needed, later = needed - 1, past.at
    return needed == 0


@dataclass(frozen=True)
class Suggestion:
    sku: str
    quantity: int
    margin: int
    reason: str


@dataclass(frozen=True)
class Evaluation:
    sku: str
    sku_class: str
    forecast: Forecast
    threshold: int
    available: int
    over: bool
    suggestion: Suggestion | None = None


@dataclass(frozen=True)
class SkuState:
    """What the decision needs to know about one A-class SKU, read by the handler."""

    sku: str
    name: str
    threshold: int
    lead_time_days: int
    available: int
    stats: SalesStats
    signals: DemandSignals = field(default_factory=DemandSignals)
    previous: tuple[PastEvaluation, ...] = ()  # newest first
    open_suggestion: bool = False


def suggested_quantity(forecast: float, available: int, lead_time_days: int) -> tuple[int, int]:
    """(quantity, margin): cover the next 48 hours plus what sells during the lead time."""
    margin = math.ceil(forecast / 2 * lead_time_days - 1e-9)
    return max(0, math.ceil(forecast + margin - available - 1e-9)), margin


def evaluate(state: SkuState, sku_class: str, now: datetime, policy: SafetyStockPolicy) -> Evaluation:
    forecast = forecast_48h(state.stats, state.signals, policy)
    over = is_over(forecast.total, state.threshold, policy)
    evaluation = Evaluation(state.sku, sku_class, forecast, state.threshold, state.available, over)
    if state.open_suggestion or not over_in_a_row(over, now, state.previous, policy):
        return evaluation
    quantity, margin = suggested_quantity(forecast.total, state.available, state.lead_time_days)
    if quantity <= 0:
        return evaluation
    reason = _reason(state, forecast, margin, quantity, policy)
    return Evaluation(
        state.sku, sku_class, forecast, state.threshold, state.available, over,
        Suggestion(state.sku, quantity, margin, reason),
    )


def _reason(state: SkuState, forecast: Forecast, margin: int, quantity: int, policy: SafetyStockPolicy) -> str:
    s = state.stats
    limit = policy.over_ratio * state.threshold
    return (
        f"{state.name or state.sku}（{state.sku}）未来 48 小时预测销量 {forecast.total:.1f} 件，"
        f"连续 {policy.consecutive} 次评估超过补货阈值 {state.threshold} 件的 {policy.over_ratio:.0%}（{limit:.0f} 件）。"
        f"依据：近 24 小时销量 {s.units_24h} 件、近 7 日 {s.units_7d} 件（历史推算 {forecast.history:.1f}），"
        f"近 24 小时加购 {state.signals.cart_adds_24h} 次（折合 {forecast.cart:.1f}），"
        f"直播在线 {state.signals.live_viewers} 人（折合 {forecast.live:.1f}）。"
        f"全部门店可用库存 {state.available} 件，交期 {state.lead_time_days} 天安全量 {margin} 件，"
        f"建议补货 {quantity} 件（{forecast.total:.1f} + {margin} − {state.available}，向上取整）。"
    )


def turnover_days(on_hand: int, units_7d: int) -> float:
    """Days the stock on hand lasts at the 7-day sales rate; infinite when nothing sold."""
    if on_hand <= 0:
        return 0.0
    return math.inf if units_7d <= 0 else on_hand / (units_7d / 7)


def is_slow_mover(on_hand: int, units_7d: int, policy: SafetyStockPolicy) -> bool:
    return turnover_days(on_hand, units_7d) > policy.slow_mover_days


def slow_mover_text(sku: str, name: str, on_hand: int, units_7d: int, policy: SafetyStockPolicy) -> str:
    days = turnover_days(on_hand, units_7d)
    shown = "近 7 日无销量" if math.isinf(days) else f"周转天数 {days:.0f} 天"
    return (
        f"{name or sku}（{sku}）滞销：库存 {on_hand} 件，近 7 日销量 {units_7d} 件，{shown}，"
        f"超过 {policy.slow_mover_days:.0f} 天。请考虑调仓、促销或暂停补货。"
    )


@dataclass(frozen=True)
class RecordDemandSignal(Command):
    sku: str
    channel: str
    kind: str  # cart_add | live_viewers
    value: int
    at: datetime | None
    by: str
    via: str


@dataclass(frozen=True)
class RegisterSku(Command):
    """Name a SKU and set its replenishment threshold (units per 48 h) and lead time."""

    sku: str
    name: str
    replenish_threshold: int
    lead_time_days: int
    by: str
    via: str


@dataclass(frozen=True)
class UnfreezeSku(Command):
    """Lift the SKU's freezes on `channels` (all channels when empty). Returns the channels lifted."""

    sku: str
    by: str
    via: str
    channels: tuple[str, ...] = ()
