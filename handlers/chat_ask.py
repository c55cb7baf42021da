"""Answers to plain questions (问, or any text the understander read) and the 库存 command.

The chat handlers, and the answers about orders, stock and one order; exceptions and after-sales are answered
in handlers/ask_cases.py. Each answer is phone-sized: the figure first, then at most a few lines, then the
next step. Roles and stores are respected per question (the rules in handlers/ask_scope.py): warehouse staff
(without a desk role) see their own store only; amounts are for finance, supervisors and managers
(domain/questions.py AMOUNT_ROLES), anyone else asking for one is refused in one sentence; stock is for the
floor, purchasing and the desk; after-sales for service, finance and the desk.
"""

from __future__ import annotations

from datetime import timedelta

from domain.chat import Card, Reply
from domain.chat_commands import AskQuestion, StockLookup, button
from domain.errors import Forbidden, NotFound
from domain.order_lifecycle import ORDER_LIFECYCLE
from domain.questions import (
    HEALTH_ROLES,
    STOCK_ROLES,
    AftersaleQuestion,
    AftersaleStatus,
    Clarify,
    HealthQuestion,
    IncidentQuestion,
    OrderQuestion,
    Place,
    Question,
    StockQuestion,
    WhereIsOrder,
    window,
)
from handlers import worklists
from handlers.aftersales import yuan
from handlers.ask_cases import answer_aftersale_status, answer_aftersales, answer_incidents
from handlers.ask_scope import LINES, allow, amount_allowed, duration, floor_only, label, more, scope
from handlers.chat_orders import card_task_id
from handlers.chat_router import ChatContext, ChatRouter
from integrations.db.ask_views import OrderFilter

chat = ChatRouter()
router = chat.router

UNSOLD = ("pending_payment", "cancelled")  # not counted when people ask what was sold
NOT_UNDERSTOOD = "没看懂“{}”。可以这样问：浦东店今天还有几单没发？发送“帮助”查看全部命令。"


@chat.handles(AskQuestion)
async def ask(cmd: AskQuestion, ctx: ChatContext) -> Reply | Card:
    if cmd.question is None:
        said = cmd.text if len(cmd.text) <= 20 else cmd.text[:20] + "…"
        return Reply(NOT_UNDERSTOOD.format(said))
    return await answer(cmd.question, cmd.message_id, ctx)


@chat.handles(StockLookup)
async def stock(cmd: StockLookup, ctx: ChatContext) -> Reply | Card:
    q = cmd.question
    if isinstance(q, Clarify):
        return clarify(q, cmd.message_id)
    if not isinstance(q, StockQuestion) or not q.skus:
        found = await ctx.uow.ask_views.find_skus(cmd.part)
        if not found:
            raise NotFound(f"找不到配件“{cmd.part}”，请核对 SKU 或名称（如：库存 BP-001）。")
        places = q.stores if isinstance(q, StockQuestion) and q.stores else (
            (Place(cmd.store.upper(), cmd.store.upper()),) if cmd.store else ())
        names = {n for n in found.values() if n}
        q = StockQuestion(skus=tuple(found), part=names.pop() if len(names) == 1 else cmd.part, stores=places)
    return await answer_stock(q, ctx)


async def answer(q: Question, message_id: str, ctx: ChatContext) -> Reply | Card:
    if isinstance(q, Clarify):
        return clarify(q, message_id)
    if isinstance(q, OrderQuestion):
        return await answer_orders(q, ctx)
    if isinstance(q, StockQuestion):
        return await answer_stock(q, ctx)
    if isinstance(q, IncidentQuestion):
        return await answer_incidents(q, ctx)
    if isinstance(q, AftersaleQuestion):
        return await answer_aftersales(q, ctx)
    if isinstance(q, WhereIsOrder):
        return await answer_where(q, ctx)
    if isinstance(q, AftersaleStatus):
        return await answer_aftersale_status(q, ctx)
    if isinstance(q, HealthQuestion):
        allow(ctx.user, HEALTH_ROLES, "今日概况")
        lines = await worklists.summary_lines(ctx.uow, ctx.deps.now)
        return Reply("\n".join([*lines, "详见 概况"]))
    raise AssertionError(f"unanswered question {q!r}")


def clarify(q: Clarify, message_id: str) -> Reply | Card:
    if not q.choices:
        return Reply(q.prompt)
    buttons = tuple(button(AskQuestion, c.text, text=c.label[:12]) for c in q.choices)
    return Card("请选择", q.prompt, card_task_id("ask", message_id), buttons)


# ---- orders

async def answer_orders(q: OrderQuestion, ctx: ChatContext) -> Reply:
    user, now = ctx.user, ctx.deps.now
    places = scope(user, q.stores, q.mine, "订单")
    amount = amount_allowed(user, q.amount)
    since, until = window(q.span, now) if q.span else (None, None)
    unchanged = None
    if q.older_than_minutes:
        unchanged = now - timedelta(minutes=q.older_than_minutes)
    states = q.states or (tuple(s for s in ORDER_LIFECYCLE.states if s not in UNSOLD) if amount else ())
    f = OrderFilter(stores=tuple(p.code for p in places), states=states, channel=q.channel, customer=q.customer,
                    since=since, until=until, time_field=q.time_field, address_changed=q.address_changed,
                    unchanged_before=unchanged)
    figures = await ctx.uow.ask_views.orders(f, LINES if q.listing else 0)
    age = f"超过{duration(q.older_than_minutes)}未变动" if q.older_than_minutes else ""
    state = q.state_label or ("改过地址" if q.address_changed else "") or ("成交" if amount else "")
    if not state and q.span is not None and q.time_field == "created":
        state = "下单"
    desc = "".join([label(places) or ("各店" if q.per_store else ""), q.span.label if q.span else "",
                    q.channel_label, f"客户{q.customer_label}" if q.customer_label else "", age, state])
    lines = [f"{figures.total} 单 · {desc or '全部订单'}"]
    if amount:
        lines.append(f"金额 {yuan(figures.amount_fen)}")
    if q.per_store and not places and figures.total:
        ranked = sorted(figures.by_store.items(), key=lambda kv: (-kv[1], kv[0]))
        lines += more([f"{code or '未分配'} {n} 单" for code, n in ranked[:LINES]], len(ranked))
    elif figures.total and len(q.states) != 1:
        seen = [s for s in ORDER_LIFECYCLE.states if figures.by_state.get(s)]
        lines.append(" · ".join(f"{ORDER_LIFECYCLE.label(s)} {figures.by_state[s]}" for s in seen[:4])
                     + (" …" if len(seen) > 4 else ""))
    if q.listing and figures.rows:
        lines += more([f"{r.order_no} {ORDER_LIFECYCLE.label(r.state)} {r.store or ''} · "
                       f"{worklists.ago(r.updated_at, now)}".replace("  ", " ") for r in figures.rows],
                      figures.total)
        lines.append(f"详情：查询 {figures.rows[0].order_no}")
    elif figures.total and floor_only(user):
        lines.append("逐单处理：发送「待办」")
    elif figures.total:
        lines.append(f"明细：问 {desc}的订单有哪些" if (places or q.states or q.channel) else "详见 概况")
    return Reply("\n".join(lines))


# ---- stock

async def answer_stock(q: StockQuestion, ctx: ChatContext) -> Reply:
    allow(ctx.user, STOCK_ROLES, "库存")
    places = scope(ctx.user, q.stores, q.mine, "库存")
    if not q.skus:
        raise NotFound(f"找不到配件“{q.part or q.query}”，请核对 SKU 或名称（如：库存 BP-001）。")
    rows = await ctx.uow.ask_views.stock(q.skus, [p.code for p in places])
    where = label(places) or "各店合计"
    if not rows:
        return Reply(f"0 件 · {q.part} {where}没有库存记录\n采购补货看「待办」")
    lines = []
    for sku in q.skus:
        mine = [r for r in rows if r.sku == sku]
        if not mine:
            continue
        available, on_hand = sum(r.available for r in mine), sum(r.on_hand for r in mine)
        name = ctx_part(q, sku)
        lines.append(f"可用 {available} 件 · {name}{sku} {where}（在库 {on_hand}）")
        if not places and len(mine) > 1:
            ranked = sorted(mine, key=lambda r: (-r.available, r.store))
            lines += more([f"　{r.store} 可用 {r.available}（在库 {r.on_hand}）" for r in ranked[:LINES]], len(ranked))
    first = q.skus[0]
    lines.append(f"单店：库存 {first} <门店>" if not places else "缺货补货看「待办」")
    return Reply("\n".join(lines))


def ctx_part(q: StockQuestion, sku: str) -> str:
    """The part's name before its SKU, when the question named one part ("刹车片 BP-001")."""
    return f"{q.part} " if q.part and q.part != sku and "、" not in q.part else ""


# ---- one order

async def answer_where(q: WhereIsOrder, ctx: ChatContext) -> Reply:
    order = await ctx.uow.orders.find(q.ref)
    if order is None:
        raise NotFound(f"找不到 {q.ref}（订单号、渠道单号或运单号都可以），请核对。")
    user = ctx.user
    if floor_only(user) and order.store != user.store:
        raise Forbidden(f"订单 {order.order_no} 不属于本门店（{user.store or '未绑定'}），您只能查看本门店的订单。")
    lines = [f"{order.order_no} {order.state_label}",
             f"门店 {order.store or '未分配'} · 运单 {order.waybill or '无'}",
             f"下一步：{worklists.next_step(order).text}",
             f"详情：查询 {order.order_no}"]
    return Reply("\n".join(lines))
