"""The books in K3 Cloud: a shipped order's receivable (应收单) and an approved refund's red receivable (红字应收单),
each committed to the outbox (channel "k3") with the change that causes it; integrations/channels/k3/books.py
delivers them, and `查询` shows the K3 numbers once booked.

An order with nothing to charge (a replacement sent for an exchange: its lines carry no price) books nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain import events
from domain.clock import local
from domain.order import Order
from domain.outbox_systems import K3_RECEIVABLE, K3_RED_RECEIVABLE, K3Booking
from handlers.bus import Deps, Router
from handlers.orders import load_order
from integrations.channels.k3.books import KIND_LABELS, STATUS_LABELS
from integrations.db.uow import UnitOfWork

router = Router()
K3_KEY = "k3_customer"


def _day(at: datetime) -> str:
    return f"{local(at):%Y-%m-%d}"


def _lines(order: Order) -> tuple[tuple[str, str, int, int], ...]:
    return tuple((x.sku, x.name, x.qty, x.unit_price_fen) for x in order.lines)


async def k3_customers(uow: UnitOfWork, customer_ids: Sequence[str]) -> dict[str, str]:
    """Each customer's K3 number (the key a K3 order brought), where one is known."""
    keys = await uow.customer_keys.of_customers(sorted(set(customer_ids)), kind=K3_KEY)
    return {cid: found[0][1] for cid, found in keys.items() if found}


@router.events_of(events.OrderShipped)
async def book_receivables(shipped: list[events.OrderShipped], uow: UnitOfWork, deps: Deps) -> None:
    charged = [e for e in shipped if e.amount_fen > 0]
    if not charged:
        return
    orders = await uow.orders.get_many([e.order_no for e in charged])
    numbers = await k3_customers(uow, [e.customer_id for e in charged])
    day = _day(deps.now)
    await uow.send(*(
        K3Booking(K3_RECEIVABLE, e.order_no, e.order_no, e.customer_id, numbers.get(e.customer_id, ""),
                  _lines(orders[e.order_no]), e.amount_fen, day)
        for e in charged if e.order_no in orders
    ), at=deps.now)


async def book_refund(event: events.RefundApproved, uow: UnitOfWork, deps: Deps) -> None:
    """The red receivable of an approved refund (called by the after-sale reaction once it knows it is a refund)."""
    if event.amount_fen <= 0:
        return
    order = await load_order(uow, event.order_no)
    numbers = await k3_customers(uow, [order.customer_id])
    await uow.send(K3Booking(
        K3_RED_RECEIVABLE, order.order_no, event.aftersale_no, order.customer_id, numbers.get(order.customer_id, ""),
        _lines(order), event.amount_fen, _day(deps.now),
    ), at=deps.now)


async def books_line(uow: UnitOfWork, order_no: str) -> str:
    """What `查询` shows of the order's books: each K3 document's number and status ("" when none is booked)."""
    bills = await uow.views.k3_bills(order_no)
    if not bills:
        return ""
    parts = [f"{KIND_LABELS.get(b.kind, b.kind)} {b.bill_no}（{STATUS_LABELS.get(b.status, b.status)}"
             f"{'' if b.ref == order_no else f'，售后单 {b.ref}'}）" for b in bills]
    return "金蝶K3：" + "；".join(parts)
