"""Dynamic safety stock, the hourly job: forecast the A-class SKUs, push replenishment to purchasing and freeze
the SKU on the non-core channels, flag slow movers to the supervisors. The rules live in domain/safety_stock.py.

Sales history is read from the orders table, not kept twice: top-level orders (children of a split repeat
their parent's lines) created in the last 7 days, neither unpaid nor cancelled, aggregated in Python per line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.chat import Reply
from domain.clock import local
from domain.safety_stock import (
    DemandSignals,
    Evaluation,
    PastEvaluation,
    SafetyStockPolicy,
    Sale,
    SalesStats,
    SkuState,
    classify,
    evaluate,
    is_slow_mover,
    sales_stats,
    slow_mover_text,
)
from handlers.bus import Deps
from handlers.notify import notify_role
from handlers.skus import active_freezes, freeze
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.marks import mark_once
from integrations.db.uow import UnitOfWork

NOT_SOLD = ("pending_payment", "cancelled")
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


@dataclass(frozen=True)
class Registered:
    name: str
    threshold: int
    lead_time_days: int


@dataclass(frozen=True)
class Stock:
    on_hand: int
    available: int


async def safety_stock(db: Database, deps: Deps, policy: SafetyStockPolicy) -> SafetyStockReport:
    """One hourly evaluation. Every A-class evaluation is recorded; alerts are marked once in the database."""
    now = deps.now
    report = SafetyStockReport()
    async with UnitOfWork(db) as uow:
        stats = sales_stats(await _sales(uow.conn, now), now, policy.short_video_channels)
        registered = await _registered(uow.conn)
        stock = await _stock(uow.conn)
        classes = classify(stats, [*registered, *stock], policy)
        a_class = sorted(sku for sku, cls in classes.items() if cls == "A")
        report.unregistered = tuple(sku for sku in a_class if sku not in registered)
        states = await _states(uow.conn, now, policy, [s for s in a_class if s in registered],
                               registered, stock, stats)
        for state in states:
            evaluation = evaluate(state, "A", now, policy)
            report.evaluated += 1
            report.over += evaluation.over
            if evaluation.suggestion and await _push_suggestion(uow, deps, evaluation, state, policy, report):
                report.suggested += 1
            else:
                await _record(uow.conn, evaluation, now, suggested=None)
        report.slow_movers = await _flag_slow_movers(uow, deps, policy, stock, stats, registered)
        await uow.commit()
    return report


async def _push_suggestion(
    uow: UnitOfWork, deps: Deps, evaluation: Evaluation, state: SkuState, policy: SafetyStockPolicy,
    report: SafetyStockReport,
) -> bool:
    """Once per SKU per local day: record, freeze the non-core channels, tell purchasing (or the supervisors)."""
    assert evaluation.suggestion is not None
    now = deps.now
    key = f"replenish:{state.sku}:{local(now):%Y-%m-%d}"
    if not await mark_once(uow.conn, [key], now):
        return False
    suggestion = evaluation.suggestion
    await _record(uow.conn, evaluation, now, suggested=suggestion.quantity)
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


async def _record(conn: AsyncConnection, evaluation: Evaluation, at: datetime, *, suggested: int | None) -> None:
    await conn.execute(insert(t.stock_evaluations).values({
        "sku": evaluation.sku, "evaluated_at": at, "forecast": round(evaluation.forecast.total, 3),
        "threshold": evaluation.threshold, "over": evaluation.over, "class": evaluation.sku_class,
        "available": evaluation.available, "suggested_qty": suggested,
    }))


async def _flag_slow_movers(
    uow: UnitOfWork, deps: Deps, policy: SafetyStockPolicy, stock: dict[str, Stock], stats: dict[str, SalesStats],
    registered: dict[str, Registered],
) -> int:
    """Each slow mover once per SKU per ISO week: an exceptions row each, one digest to the supervisors."""
    now = deps.now
    year, week, _ = local(now).isocalendar()
    slow = {sku: f"slow_mover:{sku}:{year}-W{week:02d}" for sku, s in sorted(stock.items())
            if is_slow_mover(s.on_hand, stats.get(sku, SalesStats(sku)).units_7d, policy)}
    fresh = await mark_once(uow.conn, list(slow.values()), now)
    flagged = [sku for sku, key in slow.items() if key in fresh]
    if not flagged:
        return 0
    texts = {
        sku: slow_mover_text(sku, registered[sku].name if sku in registered else "", stock[sku].on_hand,
                             stats.get(sku, SalesStats(sku)).units_7d, policy)
        for sku in flagged
    }
    await uow.conn.execute(insert(t.exceptions), [
        {"kind": "slow_mover", "order_no": None, "sku": sku, "store": None, "severity": "warning",
         "message": texts[sku], "opened_at": now, "resolution": ""}
        for sku in flagged
    ])
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


async def _sales(conn: AsyncConnection, now: datetime) -> list[Sale]:
    o = t.orders.c
    stmt = (
        select(o.channel, o.lines, o.created_at)
        .where(o.parent_no.is_(None), o.state.not_in(NOT_SOLD), o.created_at > now - timedelta(days=7),
               o.created_at <= now)
        .execution_options(yield_per=2000)
    )
    sales: list[Sale] = []
    async for channel, lines, created_at in await conn.stream(stmt):
        sales.extend(Sale(line["sku"], channel, int(line["qty"]), created_at) for line in lines)
    return sales


async def _registered(conn: AsyncConnection) -> dict[str, Registered]:
    s = t.skus.c
    rows = await conn.execute(select(s.sku, s.name, s.replenish_threshold, s.lead_time_days))
    return {r.sku: Registered(r.name, r.replenish_threshold, r.lead_time_days) for r in rows}


async def _stock(conn: AsyncConnection) -> dict[str, Stock]:
    i = t.inventory.c
    rows = await conn.execute(
        select(i.sku, func.sum(i.on_hand), func.sum(i.on_hand - i.reserved)).group_by(i.sku)
    )
    return {sku: Stock(int(on_hand or 0), int(available or 0)) for sku, on_hand, available in rows}


async def _states(
    conn: AsyncConnection, now: datetime, policy: SafetyStockPolicy, skus: Sequence[str],
    registered: dict[str, Registered], stock: dict[str, Stock], stats: dict[str, SalesStats],
) -> list[SkuState]:
    if not skus:
        return []
    signals = await _signals(conn, now, policy, skus)
    previous = await _previous(conn, now, policy, skus)
    frozen = {sku for sku, _ in await active_freezes(conn, skus)}
    return [
        SkuState(
            sku=sku, name=registered[sku].name, threshold=registered[sku].threshold,
            lead_time_days=registered[sku].lead_time_days, available=stock.get(sku, Stock(0, 0)).available,
            stats=stats.get(sku, SalesStats(sku)), signals=signals.get(sku, DemandSignals()),
            previous=previous.get(sku, ()), open_suggestion=sku in frozen,
        )
        for sku in skus
    ]


async def _signals(
    conn: AsyncConnection, now: datetime, policy: SafetyStockPolicy, skus: Sequence[str]
) -> dict[str, DemandSignals]:
    """Cart adds summed over the last 24 h; live viewers: the latest fresh reading per channel, summed."""
    d = t.demand_signals.c
    carts: dict[str, int] = {sku: int(total or 0) for sku, total in await conn.execute(
        select(d.sku, func.sum(d.value))
        .where(d.kind == "cart_add", d.at > now - timedelta(hours=24), d.at <= now, d.sku.in_(skus))
        .group_by(d.sku)
    )}
    latest: dict[tuple[str, str], int] = {}
    for sku, channel, value in await conn.execute(
        select(d.sku, d.channel, d.value)
        .where(d.kind == "live_viewers", d.at > now - timedelta(minutes=policy.live_fresh_minutes), d.at <= now,
               d.sku.in_(skus))
        .order_by(d.at, d.id)
    ):
        latest[(sku, channel)] = value  # ordered by time: the last one wins
    viewers: dict[str, int] = {}
    for (sku, _), value in latest.items():
        viewers[sku] = viewers.get(sku, 0) + value
    return {sku: DemandSignals(carts.get(sku, 0), viewers.get(sku, 0)) for sku in skus}


async def _previous(
    conn: AsyncConnection, now: datetime, policy: SafetyStockPolicy, skus: Sequence[str]
) -> dict[str, tuple[PastEvaluation, ...]]:
    """The evaluations that could chain to this one: newest first, within (consecutive − 1) × max_gap."""
    e = t.stock_evaluations.c
    since = now - policy.max_gap * max(policy.consecutive - 1, 0)
    found: dict[str, list[PastEvaluation]] = {}
    for sku, at, over in await conn.execute(
        select(e.sku, e.evaluated_at, e.over)
        .where(e.sku.in_(skus), e.evaluated_at >= since, e.evaluated_at < now)
        .order_by(e.evaluated_at.desc(), e.id.desc())
    ):
        found.setdefault(sku, []).append(PastEvaluation(at, bool(over)))
    return {sku: tuple(items) for sku, items in found.items()}


def policy_of(
    *, short_video_channels: Iterable[str], a_top_n: int, b_share: float, recent_weight: float, w_hist: float,
    w_cart: float, w_live: float, cart_conversion: float, viewer_conversion: float, live_hours: float,
    live_fresh_minutes: int, over_ratio: float, consecutive: int, max_gap_minutes: int, slow_mover_days: float,
    core_channels: Iterable[str], non_core_channels: Iterable[str],
) -> SafetyStockPolicy:
    """The domain policy from the `safety_stock` settings section (`policy_of(**cfg.model_dump())`)."""
    return SafetyStockPolicy(
        short_video_channels=tuple(short_video_channels), a_top_n=a_top_n, b_share=b_share,
        recent_weight=recent_weight, w_hist=w_hist, w_cart=w_cart, w_live=w_live, cart_conversion=cart_conversion,
        viewer_conversion=viewer_conversion, live_hours=live_hours, live_fresh_minutes=live_fresh_minutes,
        over_ratio=over_ratio, consecutive=max(1, consecutive), max_gap=timedelta(minutes=max_gap_minutes),
        slow_mover_days=slow_mover_days, core_channels=tuple(core_channels),
        non_core_channels=tuple(c for c in non_core_channels if c not in set(core_channels)),
    )

