"""Order use cases: create (idempotent), allocate to stores, lifecycle triggers, address change."""

from __future__ import annotations

from dataclasses import dataclass

from domain import commands as c
from domain import events
from domain.errors import DomainError, IllegalTransition, NotFound, OutOfStock
from domain.inventory import plan_allocation
from domain.order import Order, OrderLine, new_order
from domain.order_lifecycle import ORDER_LIFECYCLE
from domain.outbox import SMS_ADDRESS_CHANGED, SMS_SHIPPED, CustomerText
from handlers import customers as customer_cases
from handlers.bus import Deps, Router
from integrations.db.uow import UnitOfWork

router = Router()


async def load_order(uow: UnitOfWork, ref: str) -> Order:
    order = await uow.orders.find(ref)
    if order is None:
        raise NotFound(f"找不到订单 {ref}，请核对单号（可用本系统单号、渠道单号或运单号）。")
    return order


@router.command(c.CreateOrder)
async def create_order(cmd: c.CreateOrder, uow: UnitOfWork, deps: Deps) -> tuple[Order, bool]:
    """Returns (order, created). The same channel + external_id always yields the same order."""
    existing = await uow.orders.by_external_id(cmd.channel, cmd.external_id)
    if existing is not None:
        return existing, False
    now = deps.now
    buyer = customer_cases.asked(cmd)
    [customer_id] = await customer_cases.resolve([buyer], uow, deps)  # found or created from the channel's keys
    order = new_order(
        order_no="", channel=cmd.channel, external_id=cmd.external_id, customer_id=customer_id,
        customer_name=buyer.name, customer_phone=buyer.phone, address=cmd.address,
        lines=[OrderLine(x.sku, x.qty, x.unit_price_fen, x.name) for x in cmd.lines],
        store=cmd.store, paid=cmd.paid, at=now,
    )
    await uow.orders.add(order)
    await customer_cases.record_refused_keys([(order, buyer)], uow)
    await _follow_up(order, uow, deps, by=cmd.by, via=cmd.via)  # created paid: allocate at once
    return order, True


async def allocate(order: Order, uow: UnitOfWork, deps: Deps, *, by: str, via: str) -> None:
    """Reserve the lines in one store (or split into per-store child orders) and move to `split`."""
    ORDER_LIFECYCLE.ensure_legal(order, "allocate")
    now = deps.now
    available = await uow.inventory.availability([line.sku for line in order.lines])
    try:
        plan = plan_allocation(order.lines, available, order.store, sorted(available))
    except OutOfStock as err:
        await _out_of_stock(order, uow, deps, err.reason)
        return
    reserved: list[tuple[str, str, int]] = []
    try:
        for store, lines in plan.items():
            for line in lines:
                await uow.inventory.reserve(store, line.sku, line.qty, now)
                reserved.append((store, line.sku, line.qty))
    except OutOfStock as err:  # someone took the stock between the read and the reservation
        for store, sku, qty in reserved:
            await uow.inventory.release(store, sku, qty, now)
        await _out_of_stock(order, uow, deps, err.reason)
        return
    if len(plan) == 1:
        await _fire_and_save(order, "allocate", uow, deps, by=by, via=via, store=next(iter(plan)))
        return
    children = []
    for i, (store, lines) in enumerate(plan.items(), start=1):
        child = new_order(
            order_no="", channel=order.channel, external_id=f"{order.external_id}#{i}",
            customer_id=order.customer_id, customer_name=order.customer_name,
            customer_phone=order.customer_phone, address=order.address, lines=lines, at=now, paid=True,
        )
        child.parent_no = order.order_no
        await uow.orders.add(child)
        await _fire_and_save(child, "allocate", uow, deps, by=by, via=via, store=store)
        children.append(child.order_no)
    await _fire_and_save(order, "allocate", uow, deps, by=by, via=via, children=children)


async def _out_of_stock(order: Order, uow: UnitOfWork, deps: Deps, reason: str) -> None:
    skus = tuple(sorted({line.sku for line in order.lines}))
    await uow.incidents.open(
        kind="out_of_stock", order_no=order.order_no, store=order.store, severity="critical",
        message=f"订单 {order.order_no} {reason}", at=deps.now,
    )
    order.events.append(events.OrderOutOfStock(order.order_no, skus))


async def _fire_and_save(
    order: Order, trigger: str, uow: UnitOfWork, deps: Deps, *, by: str, via: str, **ctx: object
) -> None:
    order.fire(trigger, deps.now, **ctx)
    await uow.orders.save(order)
    deps.observer.transitions("order", trigger)


PLANNED = {"allocate": allocate}
"""Triggers that are whole use cases: they read and reserve stock before the transition can fire."""


async def _run(order: Order, trigger: str, uow: UnitOfWork, deps: Deps, *, by: str, via: str, **ctx: object) -> None:
    """Fire `trigger` (through its use case when it has one), then the new state's automatic trigger."""
    before = order.state
    use_case = PLANNED.get(trigger)
    if use_case is not None:
        await use_case(order, uow, deps, by=by, via=via)
    else:
        await _fire_and_save(order, trigger, uow, deps, by=by, via=via, **ctx)
    if order.state != before:  # an allocation that found no stock stays `paid` and is not retried here
        await _follow_up(order, uow, deps, by=by, via=via)


async def _follow_up(order: Order, uow: UnitOfWork, deps: Deps, *, by: str, via: str) -> None:
    """The table's automatic action of the state the order is in (paid → allocate), if it has one."""
    automatic = ORDER_LIFECYCLE.automatic(order.state)
    if automatic is not None:
        await _run(order, automatic, uow, deps, by=by, via=via)


@router.command(c.FireOrderTrigger)
async def fire_order_trigger(cmd: c.FireOrderTrigger, uow: UnitOfWork, deps: Deps) -> Order:
    order = await load_order(uow, cmd.order_no)
    ctx: dict[str, object] = {}
    if cmd.waybill:
        ctx["waybill"] = cmd.waybill
    if cmd.reason:
        ctx["reason"] = cmd.reason
    await _run(order, cmd.trigger, uow, deps, by=cmd.by, via=cmd.via, **ctx)
    return order


@dataclass(frozen=True)
class BatchOutcome:
    done: tuple[str, ...]
    refused: dict[str, str]  # order_no -> reason


@router.command(c.FireOrderTriggers)
async def fire_order_triggers(cmd: c.FireOrderTriggers, uow: UnitOfWork, deps: Deps) -> BatchOutcome:
    now, waybills = deps.now, dict(cmd.waybills)
    orders = await uow.orders.get_many(cmd.order_nos)
    refused = {no: f"找不到订单 {no}。" for no in cmd.order_nos if no not in orders}
    moved: list[Order] = []
    for no, order in orders.items():
        ctx = {"waybill": waybills[no]} if no in waybills else {}
        try:
            order.fire(cmd.trigger, now, **ctx)
        except DomainError as err:
            refused[no] = err.reason
            if isinstance(err, IllegalTransition):
                deps.observer.state_jump_anomaly()
            uow.emit(events.TriggerRefused(no, cmd.trigger, order.state, err.reason))
            continue
        moved.append(order)
    await uow.orders.save_many(moved)
    deps.observer.transitions("order", cmd.trigger, len(moved))
    return BatchOutcome(tuple(o.order_no for o in moved), refused)


@router.command(c.ChangeAddress)
async def change_address(cmd: c.ChangeAddress, uow: UnitOfWork, deps: Deps) -> Order:
    order = await load_order(uow, cmd.order_no)
    order.change_address(cmd.new_address, deps.now)
    await uow.orders.save(order)
    return order


@router.command(c.ConfirmRelabel)
async def confirm_relabel(cmd: c.ConfirmRelabel, uow: UnitOfWork, deps: Deps) -> Order:
    order = await load_order(uow, cmd.order_no)
    order.confirm_relabel(cmd.waybill, deps.now)
    await uow.orders.save(order)
    await uow.use_waybill_draft(order_no=order.order_no, waybill=order.waybill or cmd.waybill, at=deps.now)
    return order


@router.events_of(events.OrderShipped)
async def deduct_stock(shipped: list[events.OrderShipped], uow: UnitOfWork, deps: Deps) -> None:
    """One conditional UPDATE per store and SKU of the whole wave (never below zero)."""
    totals: dict[tuple[str, str], int] = {}
    for event in shipped:
        if event.store:
            for sku, qty in event.items:
                totals[event.store, sku] = totals.get((event.store, sku), 0) + qty
    for (store, sku), qty in sorted(totals.items()):
        await uow.inventory.deduct(store, sku, qty, deps.now)


@router.events_of(events.OrderShipped)
async def create_receivables(shipped: list[events.OrderShipped], uow: UnitOfWork, deps: Deps) -> None:
    await uow.create_receivables(
        [{"order_no": e.order_no, "customer_id": e.customer_id, "amount_fen": e.amount_fen} for e in shipped],
        at=deps.now,
    )


@router.events_of(events.OrderShipped)
async def text_customers(shipped: list[events.OrderShipped], uow: UnitOfWork, deps: Deps) -> None:
    await uow.send(*(
        CustomerText(e.customer_phone, f"您的订单 {e.order_no} 已发货，运单号 {e.waybill}，请留意查收。",
                     SMS_SHIPPED, f"sms:shipped:{e.order_no}",
                     params=(("order_no", e.order_no), ("waybill", e.waybill)),
                     customer_id=e.customer_id, order_no=e.order_no)
        for e in shipped if e.customer_phone
    ), at=deps.now)


@router.event(events.AddressChanged)
async def text_address_changed(event: events.AddressChanged, uow: UnitOfWork, deps: Deps) -> None:
    """An accepted address change is confirmed to the customer (a refused one goes to customer service instead)."""
    order = await load_order(uow, event.order_no)
    if not order.customer_phone:
        return
    await uow.send(CustomerText(
        order.customer_phone, f"您的订单 {order.order_no} 收货地址已改为：{event.new_address}。",
        SMS_ADDRESS_CHANGED, f"sms:address:{order.order_no}:{order.version}",
        params=(("order_no", order.order_no), ("address", event.new_address)),
        customer_id=order.customer_id, order_no=order.order_no,
    ), at=deps.now)


@router.event(events.OrderCancelled)
async def release_stock(event: events.OrderCancelled, uow: UnitOfWork, deps: Deps) -> None:
    if event.was_reserved and event.store:
        for sku, qty in event.items:
            await uow.inventory.release(event.store, sku, qty, deps.now)
