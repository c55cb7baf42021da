"""What the safety-stock evaluation reads: a week of sales, stock totals, demand signals, past evaluations.

Sales history is read from the orders table, not kept twice: top-level orders (children of a split repeat
their parent's lines) created in the window, neither unpaid nor cancelled, one Sale per line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.safety_stock import DemandSignals, PastEvaluation, Sale
from integrations.db import tables as t

NOT_SOLD = ("pending_payment", "cancelled")


@dataclass(frozen=True)
class StockTotal:
    """A SKU summed over every store."""

    on_hand: int
    available: int


class SafetyStockViews:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def sales(self, since: datetime, until: datetime) -> list[Sale]:
        o = t.orders.c
        stmt = (
            select(o.channel, o.lines, o.created_at)
            .where(o.parent_no.is_(None), o.state.not_in(NOT_SOLD), o.created_at > since, o.created_at <= until)
            .execution_options(yield_per=2000)
        )
        sales: list[Sale] = []
        async for channel, lines, created_at in await self.conn.stream(stmt):
            at = created_at
            assert at is not None
            sales.extend(Sale(line["sku"], channel, int(line["qty"]), at) for line in lines)
        return sales

    async def stock_totals(self) -> dict[str, StockTotal]:
        i = t.inventory.c
        rows = await self.conn.execute(
            select(i.sku, func.sum(i.on_hand), func.sum(i.on_hand - i.reserved)).group_by(i.sku)
        )
        return {sku: StockTotal(int(on_hand or 0), int(available or 0)) for sku, on_hand, available in rows}

    async def signals(self, now: datetime, fresh_minutes: int, skus: Sequence[str]) -> dict[str, DemandSignals]:
        """Cart adds summed over the last 24 h; live viewers: the latest fresh reading per channel, summed."""
        d = t.demand_signals.c
        carts: dict[str, int] = {sku: int(total or 0) for sku, total in await self.conn.execute(
            select(d.sku, func.sum(d.value))
            .where(d.kind == "cart_add", d.at > now - timedelta(hours=24), d.at <= now, d.sku.in_(skus))
            .group_by(d.sku)
        )}
        latest: dict[tuple[str, str], int] = {}
        for sku, channel, value in await self.conn.execute(
            select(d.sku, d.channel, d.value)
            .where(d.kind == "live_viewers", d.at > now - timedelta(minutes=fresh_minutes), d.at <= now,
                   d.sku.in_(skus))
            .order_by(d.at, d.id)
        ):
            latest[(sku, channel)] = value  # ordered by time: the last one wins
        viewers: dict[str, int] = {}
        for (sku, _), value in latest.items():
            viewers[sku] = viewers.get(sku, 0) + value
        return {sku: DemandSignals(carts.get(sku, 0), viewers.get(sku, 0)) for sku in skus}

    async def evaluations(self, since: datetime, until: datetime, skus: Sequence[str]) -> dict[str, tuple[PastEvaluation, ...]]:
        """Past evaluations in [since, until), newest first per SKU."""
        e = t.stock_evaluations.c
        found: dict[str, list[PastEvaluation]] = {}
        for sku, at, over in await self.conn.execute(
            select(e.sku, e.evaluated_at, e.over)
            .where(e.sku.in_(skus), e.evaluated_at >= since, e.evaluated_at < until)
            .order_by(e.evaluated_at.desc(), e.id.desc())
        ):
            found.setdefault(sku, []).append(PastEvaluation(at or until, bool(over)))
        return {sku: tuple(items) for sku, items in found.items()}
