"""Reactions that put a problem in front of the person who can fix it."""

from __future__ import annotations

from domain import events
from domain.chat import Card, Reply
from domain.chat_commands import QueryOrder
from domain.chat_commands import button as command_button
from handlers.bus import Deps, Router
from handlers.notify import notify_role
from handlers.orders import load_order
from handlers.waybills import provider_name, request_waybill
from integrations.db.uow import UnitOfWork

router = Router()


@router.event(events.OrderOutOfStock)
async def out_of_stock(event: events.OrderOutOfStock, uow: UnitOfWork, deps: Deps) -> None:
    text = (
        f'<font color="warning">缺货</font> 订单 {event.order_no} 无门店能发：{"、".join(event.skus)}。'
        "补货后发送：拣货前先在库存里更新数量，系统会重新分配。"
    )
    await notify_role(uow, deps, "supervisor", Reply(text, markdown=True), dedup_key=f"oos:{event.order_no}",
                      urgent=True)


@router.event(events.AddressChanged)
async def relabel_needed(event: events.AddressChanged, uow: UnitOfWork, deps: Deps) -> None:
    if not event.needs_relabel:
        return
    order = await load_order(uow, event.order_no)
    draft = await uow.create_waybill_draft(
        order_no=order.order_no, voided_waybill=event.voided_waybill, address=event.new_address, at=deps.now
    )
    provider = ""
    if order.state == "packed":  # an e-waybill store: the old one is discarded at the provider, a new one printed
        provider = await request_waybill(order, uow, deps, discard=event.voided_waybill or "")
    todo = (f"已向{provider_name(provider)}作废旧运单并取新电子面单，打印后换贴，再发送：确认改签 {order.order_no}"
            if provider else f"作废旧面单，按草稿 #{draft} 打印新面单后发送：确认改签 {order.order_no} <新运单号>")
    card = Card(
        title=f"改地址 · 需换面单 {order.order_no}",
        description=f"新地址：{event.new_address}。{todo}",
        task_id=f"relabel-{order.order_no}-{order.version}",
        fields=(("原地址", event.old_address), ("作废运单", event.voided_waybill or "无"), ("新运单草稿", f"#{draft}")),
        buttons=(command_button(QueryOrder, order.order_no, text="查看订单", style=2),),
        highlight=True,
    )
    await notify_role(
        uow, deps, "warehouse", card, store=order.store,
        dedup_key=f"relabel:{order.order_no}:{order.version}", urgent=True,
    )


@router.event(events.AddressChanged)
async def recalculate_credit_terms(event: events.AddressChanged, uow: UnitOfWork, deps: Deps) -> None:
    """The case's third step of an address change: finance recalculates the credit terms (账期重算).

    Same unit of work as the change itself: if this push cannot be queued, the address is not changed either.
    """
    order = await load_order(uow, event.order_no)
    text = (
        f"**账期重算** 订单 {order.order_no}（客户 {order.customer_name or order.customer_id}）收货地址已改，"
        f"请按新地址重算账期与运费。\n原地址：{event.old_address}\n新地址：{event.new_address}"
    )
    await notify_role(
        uow, deps, "finance", Reply(text, markdown=True), dedup_key=f"credit_terms:{order.order_no}:{order.version}"
    )
