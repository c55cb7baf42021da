"""What the logistics sweep reads and writes: orders with their latest courier track, and the tracks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.arbitration import CourierReport
from integrations.db import tables as t
from integrations.db.courier_tracks import report_of, track_row, upsert_tracks

# delivery_exception: a person reported the parcel missing; a courier "signed" then is the three-way conflict
# packed: a parcel signed before it left is the case's conflict
SWEEP_STATES = ("packed", "shipped", "in_transit", "delivery_exception")


@dataclass(frozen=True)
class TrackedOrder:
    order_no: str
    state: str
    waybill: str
    shipped_at: datetime | None
    customer_id: str
    store: str | None


_o, _k, _a = t.orders.c, t.courier_tracks.c, t.audit_log.c
_ORDER_COLUMNS = (_o.order_no, _o.state, _o.waybill, _o.shipped_at, _o.customer_id, _o.store)
_tracked_page = (
    select(*_ORDER_COLUMNS, _k.status, _k.signed_at, _k.last_at, _k.last_context)
    .select_from(t.orders.join(t.courier_tracks, _k.waybill == _o.waybill))
    .where(and_(_o.state.in_(SWEEP_STATES), _o.order_no > bindparam("after")))
    .order_by(_o.order_no)
    .limit(bindparam("size"))
)
_of_waybill = (
    select(*_ORDER_COLUMNS, _k.status, _k.signed_at, _k.last_at, _k.last_context)
    .select_from(t.orders.join(t.courier_tracks, _k.waybill == _o.waybill))
    .where(and_(_o.state.in_(SWEEP_STATES), _o.waybill == bindparam("waybill")))
)
_age = func.coalesce(_o.shipped_at, _o.updated_at)  # a packed order has no shipped_at yet
_untracked = (
    select(*_ORDER_COLUMNS)
    .select_from(t.orders.outerjoin(t.courier_tracks, _k.waybill == _o.waybill))
    .where(and_(_o.state.in_(SWEEP_STATES), _o.waybill.is_not(None), _k.waybill.is_(None),
                _age <= bindparam("cutoff", type_=t.TS)))
    .order_by(_age, _o.order_no)
    .limit(bindparam("size"))
)


class CourierTrackRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def record(self, tracks: Sequence[tuple[CourierReport, str]], at: datetime) -> None:
        """Keep each (report, carrier) unless the stored report of its waybill is newer."""
        await upsert_tracks(self.conn, [track_row(report, carrier, at) for report, carrier in tracks])

    async def tracked_page(self, after: str, size: int) -> list[tuple[TrackedOrder, CourierReport]]:
        """The next `size` sweepable orders after order_no `after` that have a track, with it."""
        rows = await self.conn.execute(_tracked_page, {"after": after, "size": size})
        return [(_tracked(r), report_of(r)) for r in rows]

    async def of_waybill(self, waybill: str) -> list[tuple[TrackedOrder, CourierReport]]:
        """The sweepable orders that carry `waybill` (one, unless a label is shared), with its track."""
        rows = await self.conn.execute(_of_waybill, {"waybill": waybill})
        return [(_tracked(r), report_of(r)) for r in rows]

    async def untracked(self, cutoff: datetime, size: int) -> list[TrackedOrder]:
        """Sweepable orders with a waybill but no track, shipped (or packed) before `cutoff`, oldest first."""
        rows = await self.conn.execute(_untracked, {"cutoff": cutoff, "size": size})
        return [_tracked(r) for r in rows]

    async def exception_reporters(self, order_nos: Sequence[str]) -> dict[str, str]:
        """order_no → the channel (`via`) of the latest accepted report_exception of each order that has one."""
        if not order_nos:
            return {}
        rows = await self.conn.execute(
            select(_a.entity_id, _a.via).where(
                _a.entity == "order", _a.action == "report_exception", _a.outcome == "ok",
                _a.entity_id.in_(list(order_nos)),
            ).order_by(_a.id)
        )
        return {entity_id: via for entity_id, via in rows}


def _tracked(r: Any) -> TrackedOrder:
    return TrackedOrder(r.order_no, r.state, r.waybill, r.shipped_at, r.customer_id, r.store)
