"""The packing bench's e-waybills: 打包 asks the store's provider for one (a WaybillRequest committed with the
transition), the answer is stored on the order with a label row for the store's printer, 重打 prints again (or asks
again when none was taken), and an address change in the warehouse asks for a new one that replaces the old.

Without a provider for the store (WAYBILL__PROVIDERS / DEFAULT) or without the store in the register, nothing here
happens: the waybill is typed at 发货 as before.
"""

from __future__ import annotations

import logging

from domain import events
from domain.chat import Reply
from domain.chat_commands import ReprintLabel
from domain.clock import local
from domain.errors import GuardRefused
from domain.events import Change
from domain.labels import EncryptedPrint, Label, Party
from domain.order import Order
from domain.outbox import ChatPush
from domain.outbox_systems import PrintLabel, WaybillRequest, label_from_data
from domain.waybills import PROVIDER_NAMES, IssuedWaybill, RecordWaybill
from handlers.bus import Deps
from handlers.chat_router import ChatContext, ChatRouter
from handlers.notify import notify_role
from handlers.orders import load_order
from integrations.db.uow import UnitOfWork
from integrations.logistics.kuaidi100 import carrier_for
from integrations.sms.templates import courier_name

log = logging.getLogger(__name__)
chat = ChatRouter()
router = chat.router
PEOPLE_ONLY = ("system", "api", "cli")  # actors that are not a person to tell


def items_summary(order: Order) -> str:
    text = "；".join(f"{line.name or line.sku}×{line.qty}" for line in order.lines)
    return text if len(text) <= 60 else text[:59] + "…"


def receiver_of(order: Order) -> Party:
    return Party(order.customer_name or order.customer_id, order.customer_phone, order.address)


async def waybill_provider(order: Order, uow: UnitOfWork, deps: Deps) -> str:
    """The provider that will issue this order's e-waybill, or "" (none configured, or the store unregistered)."""
    provider = deps.waybill_provider(order.store) if order.store else ""
    if provider and await uow.stores.get(order.store or "") is None:
        log.warning("store %s has e-waybill provider %s but is not in the store register: waybills are typed",
                    order.store, provider)
        return ""
    return provider


async def request_waybill(order: Order, uow: UnitOfWork, deps: Deps, *, asked_by: str = "", discard: str = "") -> str:
    """Commit a WaybillRequest for `order`; returns the provider's name, or "" when the store has none."""
    provider = await waybill_provider(order, uow, deps)
    store = await uow.stores.get(order.store or "") if provider else None
    if store is None or order.store is None:
        return ""
    n = await uow.print_rows.requests_made(order.order_no) + 1
    request = WaybillRequest(order.order_no, order.store, f"{order.order_no}-{n}", store.sender(), receiver_of(order),
                             items_summary(order), sum(line.qty for line in order.lines), discard,
                             asked_by if asked_by not in PEOPLE_ONLY else "")
    await uow.send(request, at=deps.now)
    return provider


def provider_name(provider: str) -> str:
    return PROVIDER_NAMES.get(provider, provider)


@router.events_of(events.OrderStateChanged)
async def request_on_pack(changes: list[events.OrderStateChanged], uow: UnitOfWork, deps: Deps) -> None:
    """打包 without a typed waybill: the store's provider is asked for one, in the same transaction."""
    # an order packed with a typed waybill has one (entering `packed` sets it): no need to read it
    packed = [e.order_no for e in changes if e.trigger == "pack" and e.to_state == "packed"
              and not (e.detail and e.detail.get("waybill"))]
    if not packed:
        return
    for order in (await uow.orders.get_many(packed)).values():  # one read for a scanned wave
        if not order.waybill and order.store and deps.waybill_provider(order.store):
            await request_waybill(order, uow, deps, asked_by=uow.actor)


@router.command(RecordWaybill)
async def record_waybill(cmd: RecordWaybill, uow: UnitOfWork, deps: Deps) -> bool:
    """The provider's number on the order (audited), a label row for the store's printer, and word to whoever packed.
    False when the number is not needed any more (recorded before, the order moved on, or the address changed)."""
    order, request, issued = await load_order(uow, cmd.order_no), cmd.request, cmd.issued
    if order.waybill == issued.waybill:
        return False  # the same answer delivered twice
    stale = order.address != request.receiver.address
    if stale or order.state != "packed" or order.waybill:
        reason = "收货地址已改" if stale else f"订单{order.state_label}，运单 {order.waybill or '无'}"
        await uow.record([Change("order", order.order_no, "issue_waybill", order.state, order.state, outcome="refused",
                                 reason=f"电子面单 {issued.waybill} 未使用：{reason}",
                                 detail={"waybill": issued.waybill, "provider": issued.provider})], deps.now)
        log.warning("order %s: waybill %s from %s not used (%s)", order.order_no, issued.waybill, issued.provider, reason)
        return False
    order.assign_waybill(issued.waybill, issued.courier, issued.provider, deps.now, replaces=request.discard)
    await uow.orders.save(order)
    store = order.store or request.store
    await uow.send(PrintLabel(store, label_of(order.order_no, request, issued, deps)), at=deps.now)
    text = issued_text(order, request, issued)
    if request.asked_by:
        await uow.send(ChatPush(request.asked_by, Reply(text), f"waybill-told:{request.request_id}"), at=deps.now)
    else:
        await notify_role(uow, deps, "warehouse", Reply(text), store=store, dedup_key=f"waybill-told:{request.request_id}")
    return True


def label_of(order_no: str, request: WaybillRequest, issued: IssuedWaybill, deps: Deps) -> Label | EncryptedPrint:
    if issued.print_data:
        return EncryptedPrint(order_no, issued.waybill, issued.print_data)
    return Label(order_no, issued.waybill, issued.courier, issued.courier_name, request.sender, request.receiver,
                 request.items, issued.route_mark, f"{local(deps.now):%Y-%m-%d %H:%M}")


def issued_text(order: Order, request: WaybillRequest, issued: IssuedWaybill) -> str:
    head = (f"订单 {order.order_no} 电子面单已取到：{issued.courier_name} {issued.waybill}"
            f"（{provider_name(issued.provider)}），面单已发往门店 {order.store} 的面单打印机。")
    if request.discard or order.address_change_pending:
        voided = f"旧运单 {request.discard} 已作废。" if request.discard else ""
        return head + f"{voided}换贴新面单后发送：确认改签 {order.order_no}"
    return head + f"贴好后扫码或发送：发货 {order.order_no}"


@chat.handles(ReprintLabel)
async def reprint(cmd: ReprintLabel, ctx: ChatContext) -> Reply:
    """The label again (copy + 1); an order whose e-waybill was never taken asks its provider again."""
    order, uow, deps = ctx.the_order, ctx.uow, ctx.deps
    no = order.order_no
    if order.state != "packed":
        raise GuardRefused(f"订单 {no} {order.state_label}，只有待出库的订单能重打面单。")
    if not order.waybill:
        if await uow.print_rows.request_under_way(no):
            return Reply(f"订单 {no} 的电子面单正在取号，取到后自动打印并通知你。")
        provider = await request_waybill(order, uow, deps, asked_by=ctx.user.userid)
        if not provider:
            raise GuardRefused(f"订单 {no} 还没有运单号，门店 {order.store} 未接电子面单。请手写运单后发送：发货 {no} <运单号>")
        return Reply(f"已重新向{provider_name(provider)}取号（订单 {no}），取到后自动打印并通知你。")
    last = await uow.print_rows.last_label(no, order.waybill)
    if last is not None:
        label, copy = label_from_data(last["label"]), int(last.get("copy", 0)) + 1
    else:  # a typed waybill: orderbot's own label from the register and the order
        store = await uow.stores.get(order.store or "")
        if store is None:
            raise GuardRefused(f"门店 {order.store} 不在门店登记里，无法打印寄件人。请先登记：orderbot stores add {order.store} …")
        label = Label(no, order.waybill, carrier_for(order.waybill, ""), courier_name(order.waybill), store.sender(),
                      receiver_of(order), items_summary(order), printed_at=f"{local(deps.now):%Y-%m-%d %H:%M}")
        copy = 0
    await uow.send(PrintLabel(order.store or "", label, copy), at=deps.now)
    return Reply(f"已重打订单 {no} 的面单（运单 {order.waybill}，第 {copy + 1} 张），已发往门店 {order.store} 的面单打印机。")
