"""Read models for lists and summaries (待办, 概况, stuck orders): plain rows, no aggregates, no wording."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from integrations.db import tables as t
from integrations.db.engine import HotStatement

_o, _x, _a = t.orders.c, t.exceptions.c, t.audit_log.c


@dataclass(frozen=True)
class WarehouseRow:
    order_no: str
    state: str
    waybill: str | None
    address_change_pending: bool
    created_at: datetime
    incident_id: int | None  # the oldest open incident of the order


@dataclass(frozen=True)
class ApprovalRow:
    aftersale_no: str
    kind: str
    amount_fen: int
    order_no: str
    created_at: datetime


@dataclass(frozen=True)
class OrderAge:
    """An order and when it last changed (an address change waiting for a new label, a stuck order)."""

    order_no: str
    state: str
    store: str | None
    updated_at: datetime


@dataclass(frozen=True)
class OrderSkus:
    order_no: str
    channel: str
    store: str | None
    skus: tuple[str, ...]


@dataclass(frozen=True)
class DaySummary:
    created: int  # orders created since the start of the day
    by_state: dict[str, int]  # orders changed since then, by their state now
    open_incidents: int
    state_jumps: int  # refused illegal triggers since then


@dataclass(frozen=True)
class BookedBill:
    kind: str  # receivable | red_receivable
    ref: str  # the order or after-sale it was booked for
    bill_no: str  # K3's FBillNo
    status: str  # K3's FDocumentStatus as orderbot left it (A saved, B submitted, C audited)


class WorklistViews:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def k3_bills(self, order_no: str) -> list[BookedBill]:
        """The documents booked in K3 for an order (its receivable, its refunds' red receivables), oldest first."""
        rows = await _K3_BILLS.fetch(self.conn, {"b_order_no": order_no})
        return [BookedBill(r["kind"], r["ref"], r["bill_no"], r["status"]) for r in rows]

    async def warehouse_orders(self, store: str, states: Sequence[str], limit: int) -> tuple[int, list[WarehouseRow]]:
        """(how many, the first `limit`): address changes and open incidents pinned on top, then oldest. The count
        is a window over every matching order, so both come in one read."""
        rows = (await self.conn.execute(
            _WAREHOUSE_ORDERS, {"b_store": store, "b_states": list(states), "b_limit": limit}
        )).all()
        return (int(rows[0].total) if rows else 0), [
            WarehouseRow(r.order_no, r.state, r.waybill, bool(r.address_change_pending), r.created_at,  # type: ignore[arg-type]
                         r.incident_id)
            for r in rows
        ]

    async def pending_approvals(self) -> list[ApprovalRow]:
        a = t.aftersales.c
        rows = await self.conn.execute(
            select(a.aftersale_no, a.kind, a.amount_fen, a.order_no, a.created_at)
            .where(a.state == "pending_approval").order_by(a.created_at, a.id)
        )
        return [ApprovalRow(r.aftersale_no, r.kind, r.amount_fen, r.order_no, r.created_at) for r in rows]  # type: ignore[arg-type]

    async def address_changes(self) -> list[OrderAge]:
        """Orders whose new address waits for a new label, longest waiting first."""
        rows = await self.conn.execute(
            select(_o.order_no, _o.state, _o.store, _o.updated_at)
            .where(_o.address_change_pending.is_(True)).order_by(_o.updated_at)
        )
        return [OrderAge(r.order_no, r.state, r.store, r.updated_at) for r in rows]  # type: ignore[arg-type]

    async def overdue_orders(self, sla_minutes: Mapping[str, int], now: datetime) -> list[OrderAge]:
        """Orders longer in their state than its SLA allows, by order_no."""
        if not sla_minutes:
            return []
        overdue = or_(*(
            and_(_o.state == state, _o.updated_at < now - timedelta(minutes=minutes))
            for state, minutes in sla_minutes.items()
        ))
        rows = await self.conn.execute(
            select(_o.order_no, _o.state, _o.store, _o.updated_at).where(overdue).order_by(_o.order_no)
        )
        return [OrderAge(r.order_no, r.state, r.store, r.updated_at) for r in rows]  # type: ignore[arg-type]

    async def top_level_order_skus(self, order_nos: Sequence[str]) -> list[OrderSkus]:
        """The channel and SKUs of those of `order_nos` that are not children of a split, by order_no."""
        rows = await self.conn.execute(
            select(_o.order_no, _o.channel, _o.lines, _o.store)
            .where(_o.order_no.in_(set(order_nos)), _o.parent_no.is_(None)).order_by(_o.order_no)
        )
        return [OrderSkus(r.order_no, r.channel, r.store, tuple(line["sku"] for line in r.lines)) for r in rows]

    async def summary(self, since: datetime) -> DaySummary:
        created = (await self.conn.execute(select(func.count()).where(_o.created_at >= since))).scalar_one()
        by_state: dict[str, int] = dict((await self.conn.execute(  # type: ignore[arg-type]
            select(_o.state, func.count()).where(_o.updated_at >= since).group_by(_o.state)
        )).all())
        open_count = (await self.conn.execute(
            select(func.count()).select_from(t.exceptions).where(_x.resolved_at.is_(None))
        )).scalar_one()
        jumps = (await self.conn.execute(
            select(func.count()).where(_a.at >= since, _a.outcome == "refused",
                                       _a.detail["code"].as_string() == "illegal_transition")
        )).scalar_one()
        return DaySummary(int(created), by_state, int(open_count), int(jumps))


_k = t.k3_bills.c
# 查询 reads it with every answer: built once, run straight on asyncpg
_K3_BILLS = HotStatement(
    select(_k.kind, _k.ref, _k.bill_no, _k.status).where(_k.order_no == bindparam("b_order_no")).order_by(_k.id)
)

_incident_id = select(func.min(_x.id)).where(_x.order_no == _o.order_no, _x.resolved_at.is_(None)).scalar_subquery()
# 待办 of a warehouse hand: built once
_WAREHOUSE_ORDERS = (
    select(_o.order_no, _o.state, _o.waybill, _o.address_change_pending, _o.created_at,
           _incident_id.label("incident_id"), func.count().over().label("total"))
    .where(_o.store == bindparam("b_store"), _o.state.in_(bindparam("b_states", expanding=True)))
    .order_by((_o.address_change_pending | _incident_id.is_not(None)).desc(), _o.created_at, _o.id)
    .limit(bindparam("b_limit"))
)
