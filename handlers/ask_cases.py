"""Answers to plain questions about exceptions (异常) and after-sales (售后): how many, which, one after-sale's state.

The chat handlers that call these are in handlers/chat_ask.py; who may see what is in handlers/ask_scope.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.aftersale import AFTERSALE_LIFECYCLE
from domain.chat import Reply
from domain.chat_commands import DESK
from domain.errors import Forbidden, NotFound
from domain.questions import (
    AFTERSALE_ROLES,
    AMOUNT_ROLES,
    INCIDENT_ROLES,
    AftersaleQuestion,
    AftersaleStatus,
    IncidentQuestion,
    window,
)
from handlers import worklists
from handlers.aftersales import yuan
from handlers.ask_scope import LINES, allow, amount_allowed, duration, label, more, scope
from handlers.chat_router import ChatContext

# ---- exceptions

async def answer_incidents(q: IncidentQuestion, ctx: ChatContext) -> Reply:
    user, now = ctx.user, ctx.deps.now
    allow(user, INCIDENT_ROLES, "异常")
    kinds = q.kinds
    if user.has("purchasing") and not user.has("warehouse", *DESK):
        allowed = ("out_of_stock", "purchase_request")
        if kinds and not set(kinds) <= set(allowed):
            raise Forbidden("采购只能查看缺货和补货申请的异常。")
        kinds = kinds or allowed
    places = scope(user, q.stores, q.mine, "异常")
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
    age = f"超过{duration(q.older_than_minutes)}" if q.older_than_minutes else ""
    desc = "".join([label(places), q.span.label if q.span else "", age, q.kind_label])
    lines = [f"{len(rows)} 条未处理异常" + (f" · {desc}" if desc else "")]
    shown = rows[:LINES if q.listing else 3]
    lines += more([worklists.exception_line(r, now) for r in shown], len(rows))
    if rows:
        lines.append("认领：确认 <编号>；处理完：解决 <编号>")
    return Reply("\n".join(lines))


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


# ---- after-sales

async def answer_aftersales(q: AftersaleQuestion, ctx: ChatContext) -> Reply:
    user, now = ctx.user, ctx.deps.now
    allow(user, AFTERSALE_ROLES, "售后")
    amount = amount_allowed(user, q.amount)
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
        lines += more([f"{r.aftersale_no} {AFTERSALE_LIFECYCLE.label(r.state)}"
                       + (f" {yuan(r.amount_fen)}" if show_amount else "") + f"（订单 {r.order_no}）"
                       for r in rows[:LINES]], len(rows))
    if any(r.state == "pending_approval" for r in rows) and user.has(*DESK):
        lines.append("审批：同意 <售后单号> / 拒绝 <售后单号> [原因]")
    elif rows:
        lines.append("待审批的：发送「待办」")
    return Reply("\n".join(lines))


async def answer_aftersale_status(q: AftersaleStatus, ctx: ChatContext) -> Reply:
    allow(ctx.user, AFTERSALE_ROLES, "售后")
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
