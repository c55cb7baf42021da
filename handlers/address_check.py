"""A customer's address change, checked on the map before the warehouse is bothered.

The check is an HTTP call, so it runs in the command's `before` step, which the bus awaits before the unit
of work opens. Then, in one transaction:
- the address resolves to street and number: the change is applied (the relabel card to the store's
  warehouse and finance's 账期重算 follow from AddressChanged), and the order's open address exceptions close;
- it does not ("浦东某小区"): the order stays as it was; an `address_unresolved` exception, a red card to
  customer service and a refused audit row are committed instead, and the caller gets the reason;
- it could not be checked (the geocoder timed out or failed): the change is applied, and customer service
  is asked to confirm the address with the customer (an `address_unverified` exception and a card);
- no geocoder is configured (no geo key): the change is applied unchecked, as before.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from domain import commands as c
from domain import events
from domain.chat import Card
from domain.chat_commands import QueryOrder
from domain.chat_commands import button as command_button
from domain.commands import OrderCommand
from domain.order import Order
from handlers import worklists
from handlers.bus import Deps, Router
from handlers.notify import notify_role
from handlers.orders import change_address, load_order
from integrations.db.uow import UnitOfWork
from integrations.geo import AddressCheck

router = Router()

UNRESOLVED, UNVERIFIED = "address_unresolved", "address_unverified"
SERVICE, FALLBACK = "service", "supervisor"  # with no customer-service staff, the supervisors are told


@dataclass(frozen=True)
class RequestAddressChange(OrderCommand["AddressChangeOutcome"]):
    order_no: str
    new_address: str
    by: str
    via: str


@dataclass(frozen=True)
class AddressChangeOutcome:
    order: Order  # as it is now: unchanged when not applied
    applied: bool
    check: AddressCheck | None


async def check_address(deps: Deps, address: str) -> AddressCheck | None:
    """None when there is nothing to ask: no geocoder, or an address too short for the domain anyway."""
    address = address.strip()
    if deps.address_validator is None or len(address) < 4:
        return None
    return await deps.address_validator.validate(address)


async def check_new_address(cmd: RequestAddressChange, deps: Deps) -> AddressCheck | None:
    return await check_address(deps, cmd.new_address)


@router.command(RequestAddressChange, before=check_new_address)
async def request_address_change(
    cmd: RequestAddressChange, uow: UnitOfWork, deps: Deps, facts: AddressCheck | None = None
) -> AddressChangeOutcome:
    """`facts` is the map's answer, asked before the transaction (None: nothing was asked)."""
    check = facts
    if check is not None and not check.ok:
        order = await load_order(uow, cmd.order_no)
        copy.deepcopy(order).change_address(cmd.new_address, deps.now)  # "shipped", "same address" come first
        await _refuse(order, cmd, check, uow, deps)
        return AddressChangeOutcome(order, False, check)
    order = await change_address(c.ChangeAddress(cmd.order_no, cmd.new_address, by=cmd.by, via=cmd.via), uow, deps)
    for row in await worklists.open_exceptions(uow, kinds=(UNRESOLVED, UNVERIFIED), order_no=order.order_no):
        note = f"地址已改为：{order.address}"
        await worklists.resolve_exception(uow, row, note, by=cmd.by, via=cmd.via, at=deps.now)
    if check is not None and check.unverified:
        await _ask_service_to_confirm(order, check, uow, deps)
    return AddressChangeOutcome(order, True, check)


async def _refuse(order: Order, cmd: RequestAddressChange, check: AddressCheck, uow: UnitOfWork, deps: Deps) -> None:
    new_address = cmd.new_address.strip()
    uow.emit(events.AddressChangeRefused(order.order_no, order.state, check.reason, {
        "new_address": new_address, "level": check.level, "formatted": check.formatted}))
    open_rows = await worklists.open_exceptions(uow, kinds=(UNRESOLVED,), order_no=order.order_no)
    if any(f"「{new_address}」" in row.message for row in open_rows):
        return  # the same vague address again: customer service already has it
    await uow.incidents.open(
        kind=UNRESOLVED, order_no=order.order_no, store=order.store, at=deps.now,
        message=f"订单 {order.order_no} 新地址「{new_address}」定位不到街道门牌（{check.level or '无结果'}），未改址，请联系客户补全",
    )
    card = _card(order, "地址不详 · 未改址", check.reason, new_address, check, deps, highlight=True)
    await _tell_service(card, uow, deps)


async def _ask_service_to_confirm(order: Order, check: AddressCheck, uow: UnitOfWork, deps: Deps) -> None:
    await uow.incidents.open(
        kind=UNVERIFIED, order_no=order.order_no, store=order.store, at=deps.now,
        message=f"订单 {order.order_no} 新地址「{order.address}」{check.reason}，已改址，请向客户确认",
    )
    text = f"{check.reason}，已按客户填写的地址改好，请电话向客户确认门牌号。"
    await _tell_service(_card(order, "地址未核验 · 已改址", text, order.address, check, deps), uow, deps)


def _card(
    order: Order, title: str, text: str, new_address: str, check: AddressCheck, deps: Deps, *, highlight: bool = False
) -> Card:
    customer = order.customer_name or order.customer_id
    fields = (("客户", f"{customer} {order.customer_phone}".strip()), ("新地址", new_address),
              ("地图定位", check.formatted or "无"), ("现地址", order.address))
    return Card(
        title=f"{title} {order.order_no}", description=text,
        task_id=f"addr-{order.order_no}-{int(deps.now.timestamp() * 1000)}",
        fields=fields, buttons=(command_button(QueryOrder, order.order_no, text="查看订单", style=2),), highlight=highlight,
    )


async def _tell_service(card: Card, uow: UnitOfWork, deps: Deps) -> None:
    if not await notify_role(uow, deps, SERVICE, card):
        await notify_role(uow, deps, FALLBACK, card)
