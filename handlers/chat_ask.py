"""Answers to plain questions (问, or any text the understander read) and the 库存 command.

Each answer is phone-sized: the figure first, then at most a few lines, then the next step. Roles and stores are
respected here, per question: warehouse staff (without a desk role) see their own store only; amounts are for
finance, supervisors and managers (domain/questions.py AMOUNT_ROLES), anyone else asking for one is refused in
one sentence; stock is for the floor, purchasing and the desk; after-sales for service, finance and the desk.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.aftersale import AFTERSALE_LIFECYCLE
from domain.chat import Card, Reply
from domain.chat_commands import DESK, AskQuestion, StockLookup, button
from domain.errors import Forbidden, NotFound
from domain.order_lifecycle import ORDER_LIFECYCLE
from domain.questions import (
    AFTERSALE_ROLES,
    AMOUNT_ROLES,
    HEALTH_ROLES,
    INCIDENT_ROLES,
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
from domain.users import ROLES, User
from handlers import worklists
from handlers.aftersales import yuan
from handlers.chat_orders import card_task_id
from handlers.chat_router import ChatContext, ChatRouter
from integrations.db.ask_views import OrderFilter

chat = ChatRouter()
router = chat.router

UNSOLD = ("pending_payment", "cancelled")  # not counted when people ask what was sold
LINES = 5  # list lines in one answer; the rest is "还有N条"
NOT_UNDERSTOOD = "没看懂“{}”。可以这样问：浦东店今天还有几单没发？发送“帮助”查看全部命令。"
FLOOR_WORDS = {"orders": "订单", "stock": "库存", "incidents": "异常"}


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
        _allow(ctx.user, HEALTH_ROLES, "今日概况")
        lines = await worklists.summary_lines(ctx.uow, ctx.deps.now)
        return Reply("\n".join([*lines, "详见 概况"]))
    raise AssertionError(f"unanswered question {q!r}")


def clarify(q: Clarify, message_id: str) -> Reply | Card:
    if not q.choices:
        return Reply(q.prompt)
    buttons = tuple(button(AskQuestion, c.text, text=c.label[:12]) for c in q.choices)
    return Card("请选择", q.prompt, card_task_id("ask", message_id), buttons)


# ---- who may see what

def _allow(user: User, roles: frozenset[str], what: str) -> None:
    if not user.has(*roles):
        allowed = "、".join(ROLES[r] for r in sorted(roles))
        raise Forbidden(f"{what}只有{allowed}可以查看。")


def _floor_only(user: User) -> bool:
    """Warehouse staff without a desk role: their own store only."""
    return user.has("warehouse") and not user.has(*DESK)


def _scope(user: User, stores: tuple[Place, ...], mine: bool, what: str) -> tuple[Place, ...]:
    if _floor_only(user):
        if not user.store:
            raise Forbidden("您还没有绑定门店，请联系运营经理。")
        if any(p.code != user.store for p in stores):
            raise Forbidden(f"您只能查看本门店（{user.store}）的{what}。")
        return stores or (Place(user.store, user.store),)
    if mine and not stores:
        if not user.store:
            raise Forbidden("您没有绑定门店，请说门店名称，如：浦东店今天几单。")
        return (Place(user.store, user.store),)
    return stores


def _amount_allowed(user: User, asked: bool) -> bool:
    if asked and not user.has(*AMOUNT_ROLES):
        raise Forbidden("金额只有财务、主管和运营经理可以查看。")
    return asked


def _more(lines: list[str], total: int) -> list[str]:
    return lines + [f"还有{total - len(lines)}条"] if total > len(lines) else lines


def _label(places: tuple[Place, ...]) -> str:
    return "、".join(p.label for p in places)


# ---- orders

async def answer_orders(q: OrderQuestion, ctx: ChatContext) -> Reply:
    user, now = ctx.user, ctx.deps.now
    places = _scope(user, q.stores, q.mine, "订单")
    amount = _amount_allowed(user, q.amount)
    since, until = window(q.span, now) if q.span else (None, None)
    unchanged = None
    if q.older_than_minutes:
        unchanged = now - timedelta(minutes=q.older_than_minutes)
    states = q.states or (tuple(s for s in ORDER_LIFECYCLE.states if s not in UNSOLD) if amount else ())
    f = OrderFilter(stores=tuple(p.code for p in places), states=states, channel=q.channel, customer=q.customer,
                    since=since, until=until, time_field=q.time_field, address_changed=q.address_changed,
                    unchanged_before=unchanged)
    figures = await ctx.uow.ask_views.orders(f, LINES if q.listing else 0)
    age = f"超过{_duration(q.older_than_minutes)}未变动" if q.older_than_minutes else ""
    state = q.state_label or ("改过地址" if q.address_changed else "") or ("成交" if amount else "")
    if not state and q.span is not None and q.time_field == "created":
        state = "下单"
    desc = "".join([_label(places) or ("各店" if q.per_store else ""), q.span.label if q.span else "",
                    q.channel_label, f"客户{q.customer_label}" if q.customer_label else "", age, state])
    lines = [f"{figures.total} 单 · {desc or '全部订单'}"]
    if amount:
        lines.append(f"金额 {yuan(figures.amount_fen)}")
    if q.per_store and not places and figures.total:
        ranked = sorted(figures.by_store.items(), key=lambda kv: (-kv[1], kv[0]))
        lines += _more([f"{code or '未分配'} {n} 单" for code, n in ranked[:LINES]], len(ranked))
    elif figures.total and len(q.states) != 1:
        seen = [s for s in ORDER_LIFECYCLE.states if figures.by_state.get(s)]
        lines.append(" · ".join(f"{ORDER_LIFECYCLE.label(s)} {figures.by_state[s]}" for s in seen[:4])
                     + (" …" if len(seen) > 4 else ""))
    if q.listing and figures.rows:
        lines += _more([f"{r.order_no} {ORDER_LIFECYCLE.label(r.state)} {r.store or ''} · "
                        f"{worklists.ago(r.updated_at, now)}".replace("  ", " ") for r in figures.rows],
                       figures.total)
        lines.append(f"详情：查询 {figures.rows[0].order_no}")
    elif figures.total and _floor_only(user):
        lines.append("逐单处理：发送「待办」")
    elif figures.total:
        lines.append(f"明细：问 {desc}的订单有哪些" if (places or q.states or q.channel) else "详见 概况")
    return Reply("\n".join(lines))


def _duration(minutes: int) -> str:
    if minutes % 1440 == 0:
        return f"{minutes // 1440}天"
    if minutes % 60 == 0:
        return f"{minutes // 60}小时"
    return f"{minutes}分钟"


# ---- stock

async def answer_stock(q: StockQuestion, ctx: ChatContext) -> Reply:
    _allow(ctx.user, STOCK_ROLES, "库存")
    places = _scope(ctx.user, q.stores, q.mine, "库存")
    if not q.skus:
        raise NotFound(f"找不到配件“{q.part or q.query}”，请核对 SKU 或名称（如：库存 BP-001）。")
    rows = await ctx.uow.ask_views.stock(q.skus, [p.code for p in places])
    where = _label(places) or "各店合计"
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
            lines += _more([f"　{r.store} 可用 {r.available}（在库 {r.on_hand}）" for r in ranked[:LINES]], len(ranked))
    first = q.skus[0]
    lines.append(f"单店：库存 {first} <门店>" if not places else "缺货补货看「待办」")
    return Reply("\n".join(lines))


def ctx_part(q: StockQuestion, sku: str) -> str:
    """The part's name before its SKU, when the question named one part ("刹车片 BP-001")."""
    return f"{q.part} " if q.part and q.part != sku and "、" not in q.part else ""


# ---- exceptions

async def answer_incidents(q: IncidentQuestion, ctx: ChatContext) -> Reply:
    user, now = ctx.user, ctx.deps.now
    _allow(user, INCIDENT_ROLES, "异常")
    kinds = q.kinds
    if user.has("purchasing") and not user.has("warehouse", *DESK):
        allowed = ("out_of_stock", "purchase_request")
        if kinds and not set(kinds) <= set(allowed):
            raise Forbidden("采购只能查看缺货和补货申请的异常。")
        kinds = kinds or allowed
    places = _scope(user, q.stores, q.mine, "异常")
    rows = await worklists.open_exceptions(ctx.uow, kinds=kinds)
    if q.older_than_minutes:
        rows = [r for r in rows if _aware(r.opened_at) < now - timedelta(minutes=q.older_than_minutes)]
    if q.span is not None:
        since, until = window(q.span, now)
        rows = [r for r in rows if since <= _aware(r.opened_at) < until]
    if places:
        codes = {p.code for p in places}
        stores = await ctx.uow.ask_views.order_stores([r.order_no for r in rows if r.order_no and not r.store])
        rows = [r for r in rows if (r.store or stores.get(r.order_no or "")) in codes]
    age = f"超过{_duration(q.older_than_minutes)}" if q.older_than_minutes else ""
    desc = "".join([_label(places), q.span.label if q.span else "", age, q.kind_label])
    lines = [f"{len(rows)} 条未处理异常" + (f" · {desc}" if desc else "")]
    shown = rows[:LINES if q.listing else 3]
    lines += _more([worklists.exception_line(r, now) for r in shown], len(rows))
    if rows:
        lines.append("认领：确认 <编号>；处理完：解决 <编号>")
    return Reply("\n".join(lines))


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


# ---- after-sales

async def answer_aftersales(q: AftersaleQuestion, ctx: ChatContext) -> Reply:
    user, now = ctx.user, ctx.deps.now
    _allow(user, AFTERSALE_ROLES, "售后")
    amount = _amount_allowed(user, q.amount)
    since, until = window(q.span, now) if q.span else (None, None)
    rows = await ctx.uow.ask_views.aftersales(states=q.states, kinds=q.kinds,
                                              changed_since=since if q.decision else None)

    def within(at: datetime | str | None) -> bool:
        if since is None or until is None:
            return True
        when = datetime.fromisoformat(at) if isinstance(at, str) else at
        return when is not None and since <= _aware(when) < until

    if q.decision == "approved":
        rows = [r for r in rows if any((not q.approver or a.get("by") == q.approver) and within(a.get("at"))
                                       for a in r.approvals)]
    elif q.decision == "rejected":
        rows = [r for r in rows if r.rejected_by and (not q.approver or r.rejected_by == q.approver)
                and within(r.updated_at)]
    else:
        rows = [r for r in rows if within(r.created_at)]
    verb = {"approved": "批的", "rejected": "拒的"}.get(q.decision, "")
    desc = "".join([q.approver_name, q.span.label if q.span else "", verb, q.state_label, q.kind_label])
    lines = [f"{len(rows)} 笔 · {desc}"]
    if amount:
        lines.append(f"金额 {yuan(sum(r.amount_fen for r in rows))}")
    if q.listing or (rows and len(rows) <= 3):
        show_amount = user.has(*AMOUNT_ROLES)
        lines += _more([f"{r.aftersale_no} {AFTERSALE_LIFECYCLE.label(r.state)}"
                        + (f" {yuan(r.amount_fen)}" if show_amount else "") + f"（订单 {r.order_no}）"
                        for r in rows[:LINES]], len(rows))
    if any(r.state == "pending_approval" for r in rows) and user.has(*DESK):
        lines.append("审批：同意 <售后单号> / 拒绝 <售后单号> [原因]")
    elif rows:
        lines.append("待审批的：发送「待办」")
    return Reply("\n".join(lines))


async def answer_aftersale_status(q: AftersaleStatus, ctx: ChatContext) -> Reply:
    _allow(ctx.user, AFTERSALE_ROLES, "售后")
    a = await ctx.uow.aftersales.get(q.aftersale_no)
    if a is None:
        raise NotFound(f"找不到售后单 {q.aftersale_no}，请核对单号。")
    money = f" {yuan(a.amount_fen)}" if ctx.user.has(*AMOUNT_ROLES) else ""
    lines = [f"{a.aftersale_no} {a.state_label} · {worklists.AFTERSALE_KINDS.get(a.kind, a.kind)}{money}",
             f"订单 {a.order_no}"]
    if a.state == "pending_approval" and ctx.user.has(*DESK):
        lines.append(f"审批：同意 {a.aftersale_no} / 拒绝 {a.aftersale_no} [原因]")
    else:
        lines.append(f"订单详情：查询 {a.order_no}")
    return Reply("\n".join(lines))


# ---- one order

async def answer_where(q: WhereIsOrder, ctx: ChatContext) -> Reply:
    order = await ctx.uow.orders.find(q.ref)
    if order is None:
        raise NotFound(f"找不到 {q.ref}（订单号、渠道单号或运单号都可以），请核对。")
    user = ctx.user
    if _floor_only(user) and order.store != user.store:
        raise Forbidden(f"订单 {order.order_no} 不属于本门店（{user.store or '未绑定'}），您只能查看本门店的订单。")
    lines = [f"{order.order_no} {order.state_label}",
             f"门店 {order.store or '未分配'} · 运单 {order.waybill or '无'}",
             f"下一步：{worklists.next_step(order).text}",
             f"详情：查询 {order.order_no}"]
    return Reply("\n".join(lines))
