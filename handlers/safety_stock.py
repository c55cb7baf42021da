"""Dynamic safety stock, the hourly job: forecast the A-class SKUs, push replenishment to purchasing and freeze
the SKU on the non-core channels, flag slow movers to the supervisors. The rules live in domain/safety_stock.py;
what it reads (a week of sales, stock, signals, past evaluations) in integrations/db/stock_views.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain import commands as c
from domain.chat import Reply
from domain.clock import local
from domain.incidents import Incident
from domain.safety_stock import (
    DemandSignals,
    Evaluation,
    SafetyStockPolicy,
    SalesStats,
    SkuState,
    classify,
    evaluate,
    is_slow_mover,
    sales_stats,
    slow_mover_text,
)
from handlers.bus import Deps, Router
from handlers.notify import notify_role
from handlers.skus import freeze
from handlers.unit_of_work import AbstractUnitOfWork
from integrations.db.skus import SkuRegistration
from integrations.db.stock_views import StockTotal

router = Router()
DIGEST_LINES = 20
HOT = '<font color="warning">补货建议</font>'


@dataclass
class SafetyStockReport:
    evaluated: int = 0
    over: int = 0
    suggested: int = 0
    frozen: int = 0
    slow_movers: int = 0
    unregistered: tuple[str, ...] = ()

    def summary(self) -> str:
        missing = f"，A 类未登记阈值 {len(self.unregistered)} 个（{'、'.join(self.unregistered[:5])}）" \
            if self.unregistered else ""
        return (
            f"评估 A 类 {self.evaluated} 个，超阈值 {self.over} 个，补货建议 {self.suggested} 个，"
            f"冻结渠道 {self.frozen} 条，新滞销 {self.slow_movers} 个{missing}"
        )


@router.command(c.EvaluateSafetyStock)
async def evaluate_safety_stock(cmd: c.EvaluateSafetyStock, uow: AbstractUnitOfWork, deps: Deps) -> SafetyStockReport:
    """One hourly evaluation. Every A-class evaluation is recorded; alerts are marked once in the database."""
    now, policy = deps.now, cmd.policy
    report = SafetyStockReport()
    stats = sales_stats(await uow.stock_views.sales(now - timedelta(days=7), now), now, policy.short_video_channels)
    registered = await uow.skus.registered()
    stock = await uow.stock_views.stock_totals()
    classes = classify(stats, [*registered, *stock], policy)
    a_class = sorted(sku for sku, cls in classes.items() if cls == "A")
    report.unregistered = tuple(sku for sku in a_class if sku not in registered)
    states = await _states(uow, now, policy, [s for s in a_class if s in registered], registered, stock, stats)
    for state in states:
        evaluation = evaluate(state, "A", now, policy)
        report.evaluated += 1
        report.over += evaluation.over
        if evaluation.suggestion and await _push_suggestion(uow, deps, evaluation, state, policy, report):
            report.suggested += 1
        else:
            await uow.skus.record_evaluation(evaluation, now, suggested=None)
    report.slow_movers = await _flag_slow_movers(uow, deps, policy, stock, stats, registered)
    return report


async def _push_suggestion(
    uow: AbstractUnitOfWork, deps: Deps, evaluation: Evaluation, state: SkuState, policy: SafetyStockPolicy,
    report: SafetyStockReport,
) -> bool:
    """Once per SKU per local day: record, freeze the non-core channels, tell purchasing (or the supervisors)."""
    assert evaluation.suggestion is not None
    now = deps.now
    key = f"replenish:{state.sku}:{local(now):%Y-%m-%d}"
    if not await uow.marks.once([key], now):
        return False
    suggestion = evaluation.suggestion
    await uow.skus.record_evaluation(evaluation, now, suggested=suggestion.quantity)
    channels = await freeze(uow, now, state.sku, policy.non_core_channels,
                            reason=f"补货建议 {suggestion.quantity} 件：预测超阈值，非核心渠道暂停")
    report.frozen += len(channels)
    frozen = (f"\n已冻结非核心渠道：{'、'.join(channels)}（核心渠道 {'、'.join(policy.core_channels)} 照常）。"
              f"补货到位后解冻：POST /api/v1/skus/{state.sku}/unfreeze") if channels else ""
    text = f"{HOT} **{state.name or state.sku}（{state.sku}）建议补货 {suggestion.quantity} 件**\n{suggestion.reason}{frozen}"
    dedup = f"replenish:{_short(state.sku)}:{local(now):%Y-%m-%d}"
    told = await notify_role(uow, deps, "purchasing", Reply(text, markdown=True), dedup_key=dedup)
    if not told:  # no buyer registered: the supervisors must know
        await notify_role(uow, deps, "supervisor", Reply(text, markdown=True), dedup_key=dedup)
    return True


async def _flag_slow_movers(
    uow: AbstractUnitOfWork, deps: Deps, policy: SafetyStockPolicy, stock: dict[str, StockTotal],
    stats: dict[str, SalesStats], registered: dict[str, SkuRegistration],
) -> int:
    """Each slow mover once per SKU per ISO week: an incident each, one digest to the supervisors."""
    now = deps.now
    year, week, _ = local(now).isocalendar()
    slow = {sku: f"slow_mover:{sku}:{year}-W{week:02d}" for sku, s in sorted(stock.items())
            if is_slow_mover(s.on_hand, stats.get(sku, SalesStats(sku)).units_7d, policy)}
    fresh = await uow.marks.once(list(slow.values()), now)
    flagged = [sku for sku, key in slow.items() if key in fresh]
    if not flagged:
        return 0
    texts = {
        sku: slow_mover_text(sku, registered[sku].name if sku in registered else "", stock[sku].on_hand,
                             stats.get(sku, SalesStats(sku)).units_7d, policy)
        for sku in flagged
    }
    await uow.incidents.add_many([Incident("slow_mover", texts[sku], now, sku=sku) for sku in flagged])
    lines = [f"- {texts[sku]}" for sku in flagged[:DIGEST_LINES]]
    more = f"\n另有 {len(flagged) - DIGEST_LINES} 个，发送「异常」查看全部。" if len(flagged) > DIGEST_LINES else ""
    text = (f'<font color="warning">滞销提醒</font> **{len(flagged)} 个 SKU 周转天数超过 '
            f"{policy.slow_mover_days:.0f} 天**\n" + "\n".join(lines) + more)
    await notify_role(uow, deps, "supervisor", Reply(text, markdown=True),
                      dedup_key=f"slow_movers:{year}-W{week:02d}:{_short(','.join(flagged))}")
    return len(flagged)


def _short(text: str) -> str:
    """Outbox dedup keys hold 128 characters with the recipient appended: long SKU codes go in hashed."""
    return text if len(text) <= 40 else hashlib.sha1(text.encode()).hexdigest()[:16]


async def _states(
    uow: AbstractUnitOfWork, now: datetime, policy: SafetyStockPolicy, skus: Sequence[str],
    registered: dict[str, SkuRegistration], stock: dict[str, StockTotal], stats: dict[str, SalesStats],
) -> list[SkuState]:
    if not skus:
        return []
    signals = await uow.stock_views.signals(now, policy.live_fresh_minutes, skus)
    # the evaluations that could chain to this one: within (consecutive − 1) × max_gap
    since = now - policy.max_gap * max(policy.consecutive - 1, 0)
    previous = await uow.stock_views.evaluations(since, now, skus)
    frozen = {sku for sku, _ in await uow.freezes.active(skus)}
    return [
        SkuState(
            sku=sku, name=registered[sku].name, threshold=registered[sku].threshold,
            lead_time_days=registered[sku].lead_time_days, available=stock.get(sku, StockTotal(0, 0)).available,
            stats=stats.get(sku, SalesStats(sku)), signals=signals.get(sku, DemandSignals()),
            previous=previous.get(sku, ()), open_suggestion=sku in frozen,
        )
        for sku in skus
    ]


def policy_of(
    *, short_video_channels: Iterable[str], a_top_n: int, b_share: float, recent_weight: float, w_hist: float,
    w_cart: float, w_live: float, cart_conversion: float, viewer_conversion: float, live_hours: float,
    live_fresh_minutes: int, over_ratio: float, consecutive: int, min_gap_minutes: int, max_gap_minutes: int,
    slow_mover_days: float,
    core_channels: Iterable[str], non_core_channels: Iterable[str],
) -> SafetyStockPolicy:
    """The domain policy from the `safety_stock` settings section (`policy_of(**cfg.model_dump())`)."""
    return SafetyStockPolicy(
        short_video_channels=tuple(short_video_channels), a_top_n=a_top_n, b_share=b_share,
        recent_weight=recent_weight, w_hist=w_hist, w_cart=w_cart, w_live=w_live, cart_conversion=cart_conversion,
        viewer_conversion=viewer_conversion, live_hours=live_hours, live_fresh_minutes=live_fresh_minutes,
        over_ratio=over_ratio, consecutive=max(1, consecutive), min_gap=timedelta(minutes=min(min_gap_minutes, max_gap_minutes)),
        max_gap=timedelta(minutes=max_gap_minutes),
        slow_mover_days=slow_mover_days, core_channels=tuple(core_channels),
        non_core_channels=tuple(c for c in non_core_channels if c not in set(core_channels)),
    )

