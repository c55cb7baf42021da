"""Chat commands for the order floor: 查询, 拣货/质检/打包/发货, 确认改签, 改地址 and scan to act; and the pick
task pushed to a store's warehouse staff when an order is allocated to it.

Which roles may run each command, and the own-store rule, are declared in domain/chat_commands.py; the
pipeline (handlers/chat_router.py) loads the order the command names and checks both before these run.
"""

from __future__ import annotations

import re
from datetime import datetime

from domain import commands as c
from domain import events
from domain.chat import Button, Card, Reply
from domain.chat_commands import (
    ActOnScan,
    ChangeOrderAddress,
    ConfirmNewWaybill,
    PackOrder,
    QueryOrder,
    SendToCheck,
    ShipOrder,
    StartPicking,
)
from domain.chat_commands import button as command_button
from domain.clock import hhmm, local
from domain.errors import IllegalTransition
from domain.order import Order
from domain.order_lifecycle import ORDER_LIFECYCLE
from domain.outbox import ChatPush
from handlers import customers as customer_cases
from handlers import worklists
from handlers.address_check import RequestAddressChange, check_address, request_address_change
from handlers.books import books_line
from handlers.bus import Deps
from handlers.chat_router import ChatContext, ChatRouter
from handlers.orders import confirm_relabel, fire_order_trigger
from handlers.waybills import provider_name, waybill_provider
from integrations.db.uow import UnitOfWork
from integrations.geo import AddressCheck

chat = ChatRouter()
router = chat.router

ACTIONS = {"create": "创建订单", "change_address": "改地址", "confirm_relabel": "确认改签", "k3_booked": "记入金蝶K3"}
ACTORS = {"api": "接口", "system": "系统"}
TIMELINE = 5
_NOT_TASK_ID = re.compile(r"[^0-9A-Za-z_\-@]")


def card_task_id(*parts: str) -> str:
    """WeCom task ids: 1-128 of [0-9A-Za-z_-@], unique per card."""
    return _NOT_TASK_ID.sub("", "-".join(parts))[:128]


# ---- 查询

@chat.handles(QueryOrder)
async def status(cmd: QueryOrder, ctx: ChatContext) -> Reply:
    return Reply(await status_text(ctx.the_order, ctx.uow, ctx.deps.now))


async def status_text(order: Order, uow: UnitOfWork, now: datetime) -> str:
    no = order.order_no
    lines = [f"订单 {no} · {order.state_label}",
             f"门店 {order.store or '未分配'} · 运单 {order.waybill or '无'} · {order.customer_name or order.customer_id}",
             f"地址：{order.address}"]
    if order.state == "split" and order.store is None:
        children = await uow.orders.children(no)
        lines.append("已拆成子单：" + "、".join(f"{ch.order_no}（{ch.store} {ch.state_label}）" for ch in children))
    timeline = await _timeline(uow, no, now)
    if timeline:
        lines += ["最近：", *timeline]
    problems = await worklists.open_exceptions(uow, order_no=no)
    if problems:
        lines += ["未处理异常：", *(worklists.exception_line(r, now) for r in problems[:3])]
    books = await books_line(uow, no)
    if books:
        lines.append(books)
    if order.settlement_hold:
        lines.append(f"客户结算已冻结，核实后由主管发送：解冻 {order.customer_id}")
    others = await customer_cases.other_orders_line(order, uow)
    if others:
        lines.append(others)
    lines.append(f"下一步：{worklists.next_step(order).text}")
    return "\n".join(lines)


async def _timeline(uow: UnitOfWork, order_no: str, now: datetime) -> list[str]:
    rows = (await uow.history("order", order_no))[-TIMELINE:]
    names = {r["actor"]: await _actor_name(uow, r["actor"]) for r in rows}
    out = []
    for r in rows:
        at = r["at"]
        when = hhmm(at) if local(at).date() == local(now).date() else f"{local(at):%m-%d %H:%M}"
        action = ACTIONS.get(r["action"]) or ORDER_LIFECYCLE.trigger_label(r["action"])
        before, after = r["from_state"], r["to_state"]
        if r["outcome"] == "refused":
            states = "（被拒）"
        elif before and after and before != after:
            states = f"（{ORDER_LIFECYCLE.label(before)}→{ORDER_LIFECYCLE.label(after)}）"
        elif after and not before:
            states = f"（{ORDER_LIFECYCLE.label(after)}）"
        else:
            states = ""
        out.append(f"{when} {names[r['actor']]} {action}{states}")
    return out


async def _actor_name(uow: UnitOfWork, actor: str) -> str:
    if actor in ACTORS:
        return ACTORS[actor]
    user = await uow.users.get(actor)
    return user.name if user is not None and user.name else actor


# ---- 拣货 / 质检 / 打包 / 发货, 确认改签, 改地址

FloorStep = StartPicking | SendToCheck | PackOrder | ShipOrder


@chat.handles(StartPicking)
@chat.handles(SendToCheck)
@chat.handles(PackOrder)
@chat.handles(ShipOrder)
async def advance(cmd: FloorStep, ctx: ChatContext) -> Reply:
    """One step of the floor: the command's name is the lifecycle trigger it fires."""
    trigger, order = cmd.spec.name, ctx.the_order
    waybill = getattr(cmd, "waybill", "") or None
    fire = c.FireOrderTrigger(order.order_no, trigger, by=ctx.user.userid, via=cmd.via, waybill=waybill)
    try:
        order = await fire_order_trigger(fire, ctx.uow, ctx.deps)
    except IllegalTransition as err:
        raise IllegalTransition(f"订单 {order.order_no} {err.reason}下一步：{worklists.next_step(order).text}") from err
    facts = ""
    if trigger == "pack" and not order.waybill and (provider := await waybill_provider(order, ctx.uow, ctx.deps)):
        return Reply(f"{cmd.spec.done} {order.order_no}，正在向{provider_name(provider)}取电子面单，取到后打印到门店 "
                     f"{order.store} 的面单打印机并通知你。贴好面单后扫码或发送：发货 {order.order_no}")
    if trigger == "ship":
        facts = f"，运单 {order.waybill}" + ("，已短信通知客户" if order.customer_phone else "")
    elif trigger == "pack" and order.waybill:
        facts = f"，运单 {order.waybill}"
    return Reply(f"{cmd.spec.done} {order.order_no}{facts}。下一步：{worklists.next_step(order).text}")


@chat.handles(ConfirmNewWaybill)
async def relabel(cmd: ConfirmNewWaybill, ctx: ChatContext) -> Reply:
    fire = c.ConfirmRelabel(ctx.the_order.order_no, cmd.waybill, by=ctx.user.userid, via=cmd.via)
    order = await confirm_relabel(fire, ctx.uow, ctx.deps)
    return Reply(f"已确认改签 {order.order_no}，新运单 {order.waybill}。下一步：{worklists.next_step(order).text}")


async def _check_new_address(cmd: ChangeOrderAddress, deps: Deps) -> AddressCheck | None:
    """Before the transaction: ask the geocoder whether the new address resolves to street and number."""
    return await check_address(deps, cmd.new_address)


@chat.handles(ChangeOrderAddress, before=_check_new_address)
async def address(cmd: ChangeOrderAddress, ctx: ChatContext) -> Reply:
    change = RequestAddressChange(ctx.the_order.order_no, cmd.new_address, by=ctx.user.userid, via=cmd.via)
    outcome = await request_address_change(change, ctx.uow, ctx.deps, facts=ctx.facts)
    order = outcome.order
    if outcome.check is not None and not outcome.applied:
        return Reply(f"{outcome.check.reason}订单 {order.order_no} 地址未改，已记为地址不详并通知客服跟进。")
    head = f"已改地址 {order.order_no}：{order.address}。"
    if outcome.check is not None and outcome.check.unverified:
        head += f"{outcome.check.reason}，已通知客服向客户确认。"
    if order.address_change_pending:
        return Reply(head + f"包裹已在门店 {order.store} 仓库，已通知仓管换贴新面单，换好后才能发货。")
    return Reply(head + f"无需换面单。下一步：{worklists.next_step(order).text}")


# ---- scan to act

@chat.handles(ActOnScan)
async def scan(cmd: ActOnScan, ctx: ChatContext) -> Card:
    order = ctx.the_order
    return order_card(order, card_task_id("scan", order.order_no, str(order.version), cmd.message_id))


def order_card(order: Order, task_id: str) -> Card:
    """The order at a glance with exactly one button: the legal next step, or 查看订单 when it must be typed."""
    no, step = order.order_no, worklists.next_step(order)
    if step.key:
        button, description = Button(step.key, step.button), f"下一步：{step.text}"
    else:
        button = command_button(QueryOrder, no, text="查看订单", style=2)
        description = f"请输入：{step.text}" if order.state == "packed" else f"下一步：{step.text}"
    if order.state == "packed" and not order.waybill and not order.address_change_pending:
        description = f"还没有运单号，请输入：发货 {no} <运单号>"
    fields = (("门店", order.store or "未分配"), ("运单", order.waybill or "无"), ("地址", order.address))
    return Card(title=f"订单 {no} · {order.state_label}", description=description, task_id=task_id,
                buttons=(button,), fields=fields, highlight=order.address_change_pending)


# ---- the pick task pushed when an order reaches a store

@router.events_of(events.OrderStateChanged)
async def push_pick_tasks(changes: list[events.OrderStateChanged], uow: UnitOfWork, deps: Deps) -> None:
    """Orders allocated to a store go to that store's warehouse staff (a split parent has no store). One read
    of the orders and one of the staff for the whole unit of work: an import batch allocates a thousand."""
    allocated = [e.order_no for e in changes if e.to_state == "split"]
    if not allocated:
        return
    orders = await uow.orders.get_many(allocated)
    staff: dict[str, list[str]] = {}
    for user in await uow.users.list(role="warehouse"):
        if user.store:
            staff.setdefault(user.store, []).append(user.userid)
    pushes = []
    for order_no in allocated:
        order = orders.get(order_no)
        if order is None or order.store is None:
            continue
        card = pick_task_card(order)
        pushes += [ChatPush(userid, card, f"task:{order.order_no}:{userid}") for userid in staff.get(order.store, ())]
    await uow.send(*pushes, at=deps.now)


def pick_task_card(order: Order) -> Card:
    items = "，".join(f"{line.name or line.sku} {line.sku}×{line.qty}" for line in order.lines)
    return Card(
        title=f"新拣货任务 · {order.order_no}", description=f"{items}。请开始拣货。",
        task_id=card_task_id("task", order.order_no, str(order.version)),
        fields=(("门店", order.store or ""), ("客户", order.customer_name or order.customer_id), ("地址", order.address)),
        buttons=(command_button(StartPicking, order.order_no, text="开始拣货"),),
    )
