"""SKUs for safety stock (thresholds, demand signals, evaluations) and channel freezes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.safety_stock import Evaluation
from integrations.db import tables as t

_s, _f = t.skus.c, t.sku_freezes.c


@dataclass(frozen=True)
class SkuRegistration:
    """What purchasing registered for a SKU: its replenishment threshold (units per 48 h) and lead time."""

    name: str
    threshold: int
    lead_time_days: int


class SkuRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def register(self, sku: str, registration: SkuRegistration, at: datetime) -> None:
        """Insert or update the SKU's registration."""
        values = {"name": registration.name, "replenish_threshold": registration.threshold,
                  "lead_time_days": registration.lead_time_days, "updated_at": at}
        known = (await self.conn.execute(select(_s.sku).where(_s.sku == sku))).first()
        if known is None:
            await self.conn.execute(insert(t.skus).values(sku=sku, **values))
        else:
            await self.conn.execute(update(t.skus).where(_s.sku == sku).values(**values))

    async def registered(self) -> dict[str, SkuRegistration]:
        rows = await self.conn.execute(select(_s.sku, _s.name, _s.replenish_threshold, _s.lead_time_days))
        return {r.sku: SkuRegistration(r.name, r.replenish_threshold, r.lead_time_days) for r in rows}

    async def record_signal(self, *, sku: str, channel: str, kind: str, value: int, at: datetime) -> None:
        """Stored in UTC like every time: SQLite keeps the wall clock and drops the offset."""
        await self.conn.execute(insert(t.demand_signals).values(
            sku=sku, channel=channel, kind=kind, value=value, at=at.astimezone(UTC),
        ))

    async def record_evaluation(self, evaluation: Evaluation, at: datetime, *, suggested: int | None) -> None:
        await self.conn.execute(insert(t.stock_evaluations).values({
            "sku": evaluation.sku, "evaluated_at": at, "forecast": round(evaluation.forecast.total, 3),
            "threshold": evaluation.threshold, "over": evaluation.over, "class": evaluation.sku_class,
            "available": evaluation.available, "suggested_qty": suggested,
        }))


class FreezeRepository:
    """A freeze tells a channel not to show the SKU until it is lifted (by a person, after replenishment)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def active(self, skus: Sequence[str] | None = None) -> set[tuple[str, str]]:
        """(sku, channel) of every freeze still in force, for `skus` or all."""
        stmt = select(_f.sku, _f.channel).where(_f.lifted_at.is_(None))
        if skus is not None:
            stmt = stmt.where(_f.sku.in_(skus))
        return {(sku, channel) for sku, channel in await self.conn.execute(stmt)}

    async def add(self, sku: str, channels: Iterable[str], *, reason: str, at: datetime) -> None:
        rows = [{"sku": sku, "channel": channel, "reason": reason, "frozen_at": at} for channel in channels]
        if rows:
            await self.conn.execute(insert(t.sku_freezes), rows)

    async def lift(self, sku: str, channels: Sequence[str], *, by: str, at: datetime) -> None:
        await self.conn.execute(
            update(t.sku_freezes).where(_f.sku == sku, _f.channel.in_(list(channels)), _f.lifted_at.is_(None))
            .values(lifted_at=at, lifted_by=by)
        )
