"""Chat verbs for the order floor: 查询, 拣货/质检/打包/发货, 改地址, 确认改签, scan to act, 待办, 异常, 概况,
确认/解决 an exception and 解冻 a customer; and the pick task pushed to a store when an order is allocated.

Warehouse staff act only on their own store's orders; a supervisor acts on any store's.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from domain import commands as c
from domain import events
from domain.chat import Button, Card, Reply
from domain.clock import hhmm, local
from domain.errors import Forbidden, IllegalTransition, InvalidInput
from domain.order import Order
from domain.order_lifecycle import ORDER_LIFECYCLE
from domain.users import ROLES, User
from handlers import worklists
from handlers.address_check import RequestAddressChange, check_address, request_address_change
from handlers.bus import Deps, Router
from handlers.chat_commands import ChatRequest, verb
from handlers.notify import notify_role
from handlers.orders import confirm_relabel, fire_order_trigger, load_order
from integrations.db.uow import UnitOfWork
from integrations.geo import AddressCheck

router = Router()

EVERYONE = tuple(ROLES)
FLOOR = ("warehouse", "supervisor")
USAGE = {
    "status": "查询 <单号>", "pick": "拣货 <单号>", "check": "质检 <单号>", "pack": "打包 <单号> [运单号]",
    "ship": "发货 <单号> [运单号]", "address": "改地址 <单号> <新地址>", "relabel": "确认改签 <单号> <新运单号>",
    "scan": "扫描订单条码或快递单", "ack": "确认 <异常编号>", "resolve": "解决 <异常编号> [说明]",
    "release": "解冻 <客户>",
}
DONE = {"pick": "已开始拣货", "check": "已送质检", "pack": "已打包", "ship": "已发货"}
ACTIONS = {"create": "创建订单", "change_address": "改地址", "confirm_relabel": "确认改签"}
ACTORS = {"api": "接口", "system": "系统"}
TIMELINE = 5
_NOT_TASK_ID = re.compile(r"[^0-9A-Za-z_\-@]")


def _arg(req: ChatRequest, i: int, name: str) -> str:
    if len(req.args) <= i or not req.args[i].strip():
        raise InvalidInput(f"缺少参数。用法：{USAGE[name]}")
    return req.args[i].strip()


def _ensure_own_store(user: User, order: Order) -> None:
    if user.has("supervisor") or order.store == user.store:
        return
    if order.store is None:
        raise Forbidden(f"订单 {order.order_no} 还没有分配到门店，仓管暂不能操作，请联系主管。")
    raise Forbidden(f"订单 {order.order_no} 属于门店 {order.store}，您只能操作本门店（{user.store or '未绑定'}）的订单。")


def card_task_id(*parts: str) -> str:
    """WeCom task ids: 1-128 of [0-9A-Za-z_-@], unique per card."""
    return _NOT_TASK_ID.sub("", "-".join(parts))[:128]


async def _mark_clicked(req: ChatRequest, user: User, done: str, uow: UnitOfWork, deps: Deps) -> None:
    """A command from a card button turns that card's button into who did it and when."""
    await uow.enqueue(
        channel="chat", kind="card_update", recipient=user.userid,
        payload={"userids": [user.userid], "response_code": req.response_code,
                 "replace_text": f"{done} · {user.name} {hhmm(deps.now)}"},
        at=deps.now, dedup_key=f"card:{req.response_code}",
    )


# ---- 查询

@verb("status", *EVERYONE, label="查询")
async def status(req: ChatRequest, user: User, uow: UnitOfWork, deps: Deps) -> Reply:
    order = await load_order(uow, _arg(req, 0, "status"))
    return Reply(await status_text(order, uow, deps.now))


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
    if order.settlement_hold:
        lines.append(f"客户结算已冻结，核实后由主管发送：解冻 {order.customer_id}")
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

async def advance(trigger: str, req: ChatRequest, user: User, uow: UnitOfWork, deps: Deps) -> Reply:
    order = await load_order(uow, _arg(req, 0, trigger))
    _ensure_own_store(user, order)
    waybill = req.args[1].strip() if len(req.args) > 1 and req.args[1].strip() else None
    cmd = c.FireOrderTrigger(order.order_no, trigger, by=user.userid, via=req.via, waybill=waybill)
    try:
        order = await fire_order_trigger(cmd, uow, deps)
    except IllegalTransition as err:
        raise IllegalTransition(f"订单 {order.order_no} {err.reason}下一步：{worklists.next_step(order).text}") from err
    if req.response_code:
        await _mark_clicked(req, user, DONE[trigger], uow, deps)
    facts = ""
    if trigger == "ship":
        facts = f"，运单 {order.waybill}" + ("，已短信通知客户" if order.customer_phone else "")
    elif trigger == "pack" and order.waybill:
        facts = f"，运单 {order.waybill}"
    return Reply(f"{DONE[trigger]} {order.order_no}{facts}。下一步：{worklists.next_step(order).text}")


def _floor_verb(trigger: str, label: str) -> None:
    async def run(req: ChatRequest, user: User, uow: UnitOfWork, deps: Deps) -> Reply:
        return await advance(trigger, req, user, uow, deps)

    verb(trigger, *FLOOR, label=label)(run)


for _trigger, _label in (("pick", "拣货"), ("check", "质检"), ("pack", "打包"), ("ship", "发货")):
    _floor_verb(_trigger, _label)


@verb("relabel", *FLOOR, label="确认改签")
async def relabel(req: ChatRequest, user: User, uow: UnitOfWork, deps: Deps) -> Reply:
    order = await load_order(uow, _arg(req, 0, "relabel"))
    _ensure_own_store(user, order)
    cmd = c.ConfirmRelabel(order.order_no, _arg(req, 1, "relabel"), by=user.userid, via=req.via)
    order = await confirm_relabel(cmd, uow, deps)
    return Reply(f"已确认改签 {order.order_no}，新运单 {order.waybill}。下一步：{worklists.next_step(order).text}")


async def _check_new_address(req: ChatRequest, deps: Deps) -> AddressCheck | None:
    """Before the transaction: ask the geocoder whether the new address resolves to street and number."""
    return await check_address(deps, " ".join(req.args[1:]))


@verb("address", "service", "supervisor", "manager", label="改地址", prepare=_check_new_address)
async def address(req: ChatRequest, user: User, uow: UnitOfWork, deps: Deps) -> Reply:
    order = await load_order(uow, _arg(req, 0, "address"))
    new_address = " ".join(req.args[1:]).strip()
    if not new_address:
        raise InvalidInput(f"缺少新地址。用法：{USAGE['address']}")
    cmd = RequestAddressChange(order.order_no, new_address, by=user.userid, via=req.via, check=req.facts)
    outcome = await request_address_change(cmd, uow, deps)
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

@verb("scan", *FLOOR, label="扫码")
async def scan(req: ChatRequest, user: User, uow: UnitOfWork, deps: Deps) -> Card:
    order = await load_order(uow, _arg(req, 0, "scan"))
    _ensure_own_store(user, order)
    return order_card(order, card_task_id("scan", order.order_no, str(order.version), req.message_id))


def order_card(order: Order, task_id: str) -> Card:
    """The order at a glance with exactly one button: the legal next step, or 查看订单 when it must be typed."""
    no, step = order.order_no, worklists.next_step(order)
    if step.key:
        button, description = Button(step.key, step.button), f"下一步：{step.text}"
    else:
        button = Button(f"status {no}", "查看订单", 2)
        description = f"请输入：{step.text}" if order.state == "packed" else f"下一步：{step.text}"
    if order.state == "packed" and not order.waybill and not order.address_change_pending:
        description = f"还没有运单号，请输入：发货 {no} <运单号>"
    fields = (("门店", order.store or "未分配"), ("运单", order.waybill or "无"), ("地址", order.address))
    return Card(title=f"订单 {no} · {order.state_label}", description=description, task_id=task_id,
                buttons=(button,), fields=fields, highlight=order.address_change_pending)


# ---- the pick task pushed when an order reaches a store

@router.event(events.OrderStateChanged)
async def push_pick_task(event: events.OrderStateChanged, uow: UnitOfWork, deps: Deps) -> None:
    """An order allocated to a store goes to that store's warehouse staff (a split parent has no store)."""
    if event.to_state != "split":
        return
    order = await uow.orders.get(event.order_no)
    if order is None or order.store is None:
        return
    items = "，".join(f"{line.name or line.sku} {line.sku}×{line.qty}" for line in order.lines)
    card = Card(
        title=f"新拣货任务 · {order.order_no}", description=f"{items}。请开始拣货。",
        task_id=card_task_id("task", order.order_no, str(order.version)),
        fields=(("门店", order.store), ("客户", order.customer_name or order.customer_id), ("地址", order.address)),
        buttons=(Button(f"pick {order.order_no}", "开始拣货"),),
    )
    await notify_role(uow, deps, "warehouse", card, store=order.store, dedup_key=f"task:{order.order_no}")


# ---- 待办 / 异常 / 概况

@verb("tasks", *EVERYONE, label="待办")
async def my_tasks(req: ChatRequest, user: User, uow: UnitOfWork, deps: Deps) -> Reply:
    now, sections = deps.now, []
    if user.has("warehouse"):
        if user.store:
            sections.append((f"门店 {user.store} 待处理订单", await worklists.warehouse_tasks(uow, user.store, now)))
        else:
            sections.append(("门店待办", ["您还没有绑定门店，请联系运营经理。"]))
    if user.has("supervisor", "manager"):
        sections.append(("待审批售后", await worklists.approval_tasks(uow, now)))
        sections.append(("未处理异常", await worklists.exception_lines(uow, now)))
    if user.has("service"):
        sections.append(("改址待换面单", await worklists.address_change_tasks(uow, now)))
    if user.has("purchasing"):
        sections.append(("缺货与补货", await worklists.exception_lines(uow, now, kinds=("out_of_stock", "purchase_request"))))
    if user.has("finance"):
        sections.append(("结算冻结的客户", await worklists.held_customers(uow)))
    body = [f"【{title}】\n" + "\n".join(lines) for title, lines in sections if lines]
    if not body:
        return Reply("暂无待办，有新任务会推送给您。")
    return Reply("\n".join(body))


@verb("exceptions", "supervisor", "manager", label="异常")
async def list_exceptions(req: ChatRequest, user: User, uow: UnitOfWork, deps: Deps) -> Reply:
    lines = await worklists.exception_lines(uow, deps.now)
    if not lines:
        return Reply("暂无未处理的异常。")
    return Reply("\n".join(["未处理异常（最新在前）：", *lines, "认领：确认 <编号>；处理完：解决 <编号> [说明]"]))


@verb("summary", "manager", "supervisor", label="概况")
async def summary(req: ChatRequest, user: User, uow: UnitOfWork, deps: Deps) -> Reply:
    lines = await worklists.summary_lines(uow, deps.now)
    return Reply("\n".join([*lines, "发送「异常」查看异常，「待办」查看待办。"]))


# ---- 确认 / 解决 an exception, 解冻 a customer

async def _exception_for(req: ChatRequest, user: User, uow: UnitOfWork, name: str) -> Any:
    row = await worklists.load_exception(uow, _arg(req, 0, name))
    if not user.has("supervisor", "manager"):
        store = await worklists.exception_store(uow, row)
        if store != user.store:
            raise Forbidden(f"异常 #{row.id} 属于{f'门店 {store}' if store else '总部'}，仓管只能处理本门店（{user.store or '未绑定'}）的异常。")
    return row


def _about(row: Any) -> str:
    return worklists.EXCEPTION_KINDS.get(row.kind, row.kind) + (f" {row.order_no}" if row.order_no else "")


@verb("ack", "supervisor", "manager", "warehouse", label="确认")
async def ack(req: ChatRequest, user: User, uow: UnitOfWork, deps: Deps) -> Reply:
    row = await _exception_for(req, user, uow, "ack")
    await worklists.ack_exception(uow, row, by=user.userid, via=req.via, at=deps.now)
    return Reply(f"已认领异常 #{row.id}（{_about(row)}）。处理完后发送：解决 {row.id} [说明]")


@verb("resolve", "supervisor", "manager", "warehouse", label="解决")
async def resolve(req: ChatRequest, user: User, uow: UnitOfWork, deps: Deps) -> Reply:
    row = await _exception_for(req, user, uow, "resolve")
    note = " ".join(req.args[1:]).strip()
    await worklists.resolve_exception(uow, row, note, by=user.userid, via=req.via, at=deps.now)
    left = len(await worklists.open_exceptions(uow))
    rest = f"还有 {left} 条未处理，发送「异常」查看。" if left else "异常已全部处理。"
    return Reply(f"已解决异常 #{row.id}（{_about(row)}）。{rest}")


@verb("release", "supervisor", "manager", label="解冻")
async def release(req: ChatRequest, user: User, uow: UnitOfWork, deps: Deps) -> Reply:
    row = await worklists.release_hold(uow, _arg(req, 0, "release"), by=user.userid, via=req.via, at=deps.now)
    why = f"（冻结原因：{row.hold_reason}）" if row.hold_reason else ""
    return Reply(f"已解冻客户 {row.name or row.customer_id}（{row.customer_id}）的结算{why}。其订单签收后即可结算完成。")
