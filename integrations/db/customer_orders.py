"""A customer's own orders, a page at a time (the mini-program's order list): every channel's, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from integrations.db import tables as t

_o = t.orders.c


@dataclass(frozen=True)
class CustomerOrder:
    order_no: str
    channel: str
    external_id: str
    state: str
    amount_fen: int
    waybill: str | None
    created_at: datetime


async def customer_orders(conn: AsyncConnection, customer_id: str, offset: int, limit: int
                          ) -> tuple[int, list[CustomerOrder]]:
    """(how many top-level orders the customer has, the page of them); split-off children are not listed."""
    where = (_o.customer_id == customer_id, _o.parent_no.is_(None))
    total = int((await conn.execute(select(func.count()).where(*where))).scalar_one())
    if not total or offset >= total:
        return total, []
    rows = await conn.execute(
        select(_o.order_no, _o.channel, _o.external_id, _o.state, _o.amount_fen, _o.waybill, _o.created_at)
        .where(*where).order_by(_o.created_at.desc(), _o.id.desc()).offset(offset).limit(limit)
    )
    return total, [CustomerOrder(r.order_no, r.channel, r.external_id, r.state, int(r.amount_fen), r.waybill,
                                 r.created_at) for r in rows]
