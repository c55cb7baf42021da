"""A batch of an export file (`orderbot orders import`) becomes orders in one unit of work.

Why not CreateOrder once per order: a 100,000-row export would be 100,000 transactions and some ten
statements per order. Here a batch is a handful of statements (duplicates found in one query, the new
orders inserted in one, stock planned from one locked read and reserved in one executemany), and the
reactions to the orders' events still run as for any order. What differs from CreateOrder on purpose:
- an order no store can fill opens no 异常 and sends no push of its own: the import's shortages are ONE
  summary 异常, updated batch after batch, and ONE push when the import ends (AnnounceImportShortages);
- with `history`, a closed order is stored as the export gives it (state, time), audited as imported;
  no stock is reserved and nobody is told.
"""

from __future__ import annotations

from domain import commands as c
from domain import events
from domain.chat import Reply
from domain.errors import DomainError, InvalidInput, OutOfStock
from domain.incidents import Incident
from domain.inventory import plan_allocation
from domain.order import Order, OrderLine, new_order
from handlers import customers as customer_cases
from handlers import orders as order_cases
from handlers.bus import Deps, Router
from handlers.notify import notify_role
from integrations.db.uow import UnitOfWork

router = Router()

CLOSED_STATES = ("completed", "cancelled")  # what --history stores
SHOWN_ORDERS = 5  # order numbers named in the shortage 异常


@router.command(c.ImportOrders)
async def import_orders(cmd: c.ImportOrders, uow: UnitOfWork, deps: Deps) -> c.ImportOutcome:
    known = await uow.orders.known_external_ids(cmd.channel, [i.order.external_id for i in cmd.orders])
    fresh: list[Order] = []
    buyers: list[customer_cases.Asked] = []
    refused: list[tuple[str, str]] = []
    for item in cmd.orders:
        if item.order.external_id in known:
            continue
        try:
            fresh.append(_closed_order(item) if cmd.history else _live_order(item.order, deps))
        except DomainError as err:
            refused.append((item.order.external_id, err.reason))
            continue
        buyers.append(customer_cases.asked(item.order))
    # the batch's customers at once: one read of the keys' owners, one insert of new customers and of new keys
    for order, customer_id in zip(fresh, await customer_cases.resolve(buyers, uow, deps), strict=True):
        order.customer_id = customer_id
    short: list[Order] = []
    spread: list[Order] = []
    reservations: dict[tuple[str, str], int] = {}
    if not cmd.history:
        short, spread, reservations = await _plan(fresh, uow, deps)
    await uow.orders.add_many(fresh)
    await customer_cases.record_refused_keys(list(zip(fresh, buyers, strict=True)), uow)
    await uow.inventory.reserve_many(reservations, deps.now)
    for order in spread:  # lines in several stores: the one-order use case makes the child orders
        await order_cases.allocate(order, uow, deps, by=cmd.by, via=cmd.via)
    shortages = await _report_shortages(cmd.shortages, [o.order_no for o in short], uow, deps)
    created = {o.external_id for o in fresh}
    return c.ImportOutcome(
        created=tuple(i.order.external_id for i in cmd.orders if i.order.external_id in created),
        duplicates=tuple(i.order.external_id for i in cmd.orders if i.order.external_id in known),
        refused=tuple(refused), shortages=shortages,
    )


def _live_order(cmd: c.CreateOrder, deps: Deps) -> Order:
    return new_order(
        order_no="", channel=cmd.channel, external_id=cmd.external_id, customer_id=cmd.customer_id,
        customer_name=cmd.customer_name, customer_phone=cmd.customer_phone, address=cmd.address,
        lines=[OrderLine(x.sku, x.qty, x.unit_price_fen, x.name) for x in cmd.lines],
        store=cmd.store, paid=cmd.paid, at=deps.now,
    )


def _closed_order(item: c.ImportedOrder) -> Order:
    """A historical order in its final state, at its own time; its one event is the audit line."""
    cmd = item.order
    if item.state not in CLOSED_STATES or item.created_at is None:
        raise InvalidInput("历史导入只收已完成或已取消的订单，并须有下单时间。")
    lines = [OrderLine(x.sku, x.qty, x.unit_price_fen, x.name) for x in cmd.lines]
    if not lines or any(x.qty <= 0 or x.unit_price_fen < 0 for x in lines):
        raise InvalidInput("订单没有商品行，或数量、单价不对。")
    order = Order(
        order_no="", channel=cmd.channel, external_id=cmd.external_id, customer_id=cmd.customer_id,
        customer_name=cmd.customer_name, customer_phone=cmd.customer_phone, address=cmd.address, lines=lines,
        store=cmd.store, state=item.state, created_at=item.created_at, updated_at=item.created_at,
    )
    order.events.append(events.OrderImported("", cmd.channel, item.state, cmd.external_id))
    return order


async def _plan(
    orders: list[Order], uow: UnitOfWork, deps: Deps
) -> tuple[list[Order], list[Order], dict[tuple[str, str], int]]:
    """Allocate the paid orders in memory from one locked read of their SKUs' stock, in file order.

    Returns the orders no store can fill (they stay paid), those spread over several stores (left to the
    one-order use case, their stock kept aside here), and the units to reserve per (store, SKU)."""
    paid = [o for o in orders if o.state == "paid"]
    if not paid:
        return [], [], {}
    available = await uow.inventory.availability(sorted({line.sku for o in paid for line in o.lines}), lock=True)
    stores = sorted(available)
    short: list[Order] = []
    spread: list[Order] = []
    reservations: dict[tuple[str, str], int] = {}
    for order in paid:
        try:
            plan = plan_allocation(order.lines, available, order.store, stores)
        except OutOfStock:
            short.append(order)
            continue
        for store, lines in plan.items():
            for line in lines:
                available[store][line.sku] -= line.qty
                if len(plan) == 1:
                    reservations[store, line.sku] = reservations.get((store, line.sku), 0) + line.qty
        if len(plan) > 1:
            spread.append(order)
            continue
        order.fire("allocate", deps.now, store=next(iter(plan)))
        deps.observer.transitions("order", "allocate")
    return short, spread, reservations


async def _report_shortages(
    so_far: c.ImportShortages, order_nos: list[str], uow: UnitOfWork, deps: Deps
) -> c.ImportShortages:
    """The import's one shortage 异常, opened at the first shortage and rewritten as more are found."""
    if not order_nos:
        return so_far
    total = c.ImportShortages(
        so_far.incident_id, so_far.count + len(order_nos), (so_far.first + tuple(order_nos))[:SHOWN_ORDERS],
        so_far.source,
    )
    message = shortage_text(total)
    if total.incident_id:
        await uow.incidents.rewrite(total.incident_id, message)
        return total
    incident_id = await uow.incidents.open_one(
        Incident("out_of_stock", message, deps.now, severity="critical")
    )
    return c.ImportShortages(incident_id, total.count, total.first, total.source)


def shortage_text(shortages: c.ImportShortages) -> str:
    more = " 等" if shortages.count > len(shortages.first) else ""
    return (
        f"导入 {shortages.source} 时有 {shortages.count} 单缺货、没有门店能发，仍为已支付待分配："
        f"{'、'.join(shortages.first)}{more}。补货后请逐单处理。"
    )


@router.command(c.AnnounceImportShortages)
async def announce_import_shortages(cmd: c.AnnounceImportShortages, uow: UnitOfWork, deps: Deps) -> None:
    """One push for the whole import, naming its 异常 (not one per order: 18,608 of them once)."""
    s = cmd.shortages
    if not s.count:
        return
    text = f'<font color="warning">缺货</font> {shortage_text(s)}详见 异常 #{s.incident_id}。'
    await notify_role(uow, deps, "supervisor", Reply(text, markdown=True), dedup_key=f"oos-import:{s.incident_id}")
