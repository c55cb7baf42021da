"""What waits for whom: the 待办, 异常 and 概况 answers, and the small use cases on exceptions and holds.

Each function reads (or changes) rows in the caller's unit of work and returns short Chinese lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update

from domain.clock import hhmm, local
from domain.errors import Conflict, GuardRefused, InvalidInput, NotFound
from domain.order_lifecycle import IN_WAREHOUSE, ORDER_LIFECYCLE
from handlers.aftersales import yuan
from integrations.db import tables as t
from integrations.db.repositories import aware
from integrations.db.uow import UnitOfWork

MAX_LINES = 10
PIN = "🔴 "
EXCEPTION_KINDS = {
    "out_of_stock": "缺货", "purchase_request": "补货申请", "stuck_order": "卡单",
    "logistics_conflict": "物流冲突",
    "address_unresolved": "地址不详", "address_unverified": "地址未核验",
}
AFTERSALE_KINDS = {"refund": "仅退款", "return": "退货退款", "exchange": "换货"}


@dataclass(frozen=True)
class NextStep:
    """What to do next with an order: in words, and the one button that does it when a tap can."""

    text: str
    key: str = ""
    button: str = ""


def next_step(order: Any) -> NextStep:
    """`order` is an Order or an orders row: both have order_no, state, waybill, address_change_pending.

    The words and the button come from the lifecycle table's next-step column."""
    step = ORDER_LIFECYCLE.next_step(order)
    if step is None:
        return NextStep(ORDER_LIFECYCLE.waiting(order.state))
    no = order.order_no
    return NextStep(step.text(no), step.key(no), step.button)


def ago(then: datetime | None, now: datetime) -> str:
    minutes = int(((now - (aware(then) or now)).total_seconds()) // 60)
    if minutes < 1:
        return "刚刚"
    if minutes < 60:
        return f"{minutes}分钟前"
    if minutes < 48 * 60:
        return f"{minutes // 60}小时前"
    return f"{minutes // 1440}天前"


def start_of_today(now: datetime) -> datetime:
    """Midnight in China time, as UTC: "today" for people in the stores."""
    return local(now).replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


_OPEN = t.exceptions.c.resolved_at.is_(None)


def _with_more(lines: list[str], total: int, hint: str) -> list[str]:
    return lines + [f"另有 {total - len(lines)} 条，{hint}"] if total > len(lines) else lines


async def warehouse_tasks(uow: UnitOfWork, store: str, now: datetime) -> list[str]:
    """The store's orders in the warehouse: address changes and open exceptions pinned on top, then oldest."""
    o, x = t.orders.c, t.exceptions.c
    exception_id = select(func.min(x.id)).where(x.order_no == o.order_no, _OPEN).scalar_subquery()
    pinned = o.address_change_pending | exception_id.is_not(None)
    where = (o.store == store, o.state.in_(IN_WAREHOUSE))
    total = (await uow.conn.execute(select(func.count()).select_from(t.orders).where(*where))).scalar_one()
    rows = (await uow.conn.execute(
        select(o.order_no, o.state, o.waybill, o.address_change_pending, o.created_at,
               exception_id.label("exception_id"))
        .where(*where).order_by(pinned.desc(), o.created_at, o.id).limit(MAX_LINES)
    )).all()
    lines = []
    for r in rows:
        why = "（改址待换面单）" if r.address_change_pending else ""
        why += f"（异常 #{r.exception_id}）" if r.exception_id else ""
        label = ORDER_LIFECYCLE.label(r.state)
        lines.append(f"{PIN if why else ''}{r.order_no} {label}{why} · {ago(r.created_at, now)} → {next_step(r).text}")
    return _with_more(lines, total, "先处理上面的。")


async def approval_tasks(uow: UnitOfWork, now: datetime) -> list[str]:
    a = t.aftersales.c
    rows = (await uow.conn.execute(
        select(a.aftersale_no, a.kind, a.amount_fen, a.order_no, a.created_at)
        .where(a.state == "pending_approval").order_by(a.created_at, a.id)
    )).all()
    lines = [
        f"{r.aftersale_no} {AFTERSALE_KINDS.get(r.kind, r.kind)} {yuan(r.amount_fen)}（订单 {r.order_no}）· "
        f"{ago(r.created_at, now)} → 同意 {r.aftersale_no} / 拒绝 {r.aftersale_no} [原因]"
        for r in rows[:MAX_LINES]
    ]
    return _with_more(lines, len(rows), "发送「待办」处理完后再看。")


async def open_exceptions(
    uow: UnitOfWork, *, kinds: tuple[str, ...] = (), order_no: str | None = None
) -> list[Any]:
    x = t.exceptions.c
    stmt = select(t.exceptions).where(_OPEN).order_by(x.opened_at.desc(), x.id.desc())
    if kinds:
        stmt = stmt.where(x.kind.in_(kinds))
    if order_no:
        stmt = stmt.where(x.order_no == order_no)
    return list((await uow.conn.execute(stmt)).all())


def exception_line(r: Any, now: datetime) -> str:
    kind = EXCEPTION_KINDS.get(r.kind, r.kind)
    order = f" {r.order_no}" if r.order_no else ""
    acked = "（已认领）" if r.acknowledged_at else ""
    mark = PIN if r.severity == "critical" else ""
    message = r.message.removeprefix(f"订单 {r.order_no} ") if r.order_no else r.message
    return f"{mark}#{r.id} {kind}{order}{acked}：{message} · {ago(r.opened_at, now)}"


async def exception_lines(uow: UnitOfWork, now: datetime, *, kinds: tuple[str, ...] = ()) -> list[str]:
    rows = await open_exceptions(uow, kinds=kinds)
    return _with_more([exception_line(r, now) for r in rows[:MAX_LINES]], len(rows), "先处理最新的。")


async def address_change_tasks(uow: UnitOfWork, now: datetime) -> list[str]:
    o = t.orders.c
    rows = (await uow.conn.execute(
        select(o.order_no, o.store, o.updated_at).where(o.address_change_pending.is_(True)).order_by(o.updated_at)
    )).all()
    lines = [f"{r.order_no} 改址待门店 {r.store or '-'} 换贴面单 · {ago(r.updated_at, now)} → 查询 {r.order_no}"
             for r in rows[:MAX_LINES]]
    return _with_more(lines, len(rows), "")


async def held_customers(uow: UnitOfWork) -> list[str]:
    c = t.customers.c
    rows = (await uow.conn.execute(
        select(c.customer_id, c.name, c.hold_reason).where(c.settlement_hold.is_(True)).order_by(c.updated_at)
    )).all()
    lines = [f"客户 {r.name or r.customer_id}（{r.customer_id}）结算冻结：{r.hold_reason or '待核实'}"
             for r in rows[:MAX_LINES]]
    return _with_more(lines, len(rows), "")


async def summary_lines(uow: UnitOfWork, now: datetime) -> list[str]:
    """Today's orders by state, open exceptions, and today's state-jump anomalies (refused illegal triggers)."""
    since = start_of_today(now)
    o, a = t.orders.c, t.audit_log.c
    created = (await uow.conn.execute(select(func.count()).where(o.created_at >= since))).scalar_one()
    by_state: dict[str, int] = dict((await uow.conn.execute(
        select(o.state, func.count()).where(o.updated_at >= since).group_by(o.state)
    )).all())
    states = " · ".join(f"{ORDER_LIFECYCLE.label(s)} {by_state[s]}" for s in ORDER_LIFECYCLE.states if s in by_state)
    open_count = (await uow.conn.execute(select(func.count()).select_from(t.exceptions).where(_OPEN))).scalar_one()
    jumps = (await uow.conn.execute(
        select(func.count()).where(a.at >= since, a.outcome == "refused",
                                   a.detail["code"].as_string() == "illegal_transition")
    )).scalar_one()
    return [
        f"今日概况（截至 {hhmm(now)}）",
        f"新订单 {created} 单；今日有变动 {sum(by_state.values())} 单",
        states or "今日还没有订单变动",
        f"未处理异常 {open_count} 条 · 今日状态跳变异常 {jumps} 次",
    ]


# ---- exceptions and settlement holds: changed by people in chat, each change audited

async def load_exception(uow: UnitOfWork, ref: str) -> Any:
    digits = ref.lstrip("#")
    if not digits.isdigit():
        raise InvalidInput("异常编号应是数字，例如：确认 12（发送「异常」查看编号）。")
    row = (await uow.conn.execute(select(t.exceptions).where(t.exceptions.c.id == int(digits)))).first()
    if row is None:
        raise NotFound(f"找不到异常 #{digits}，发送「异常」查看未处理的异常。")
    return row


async def exception_store(uow: UnitOfWork, row: Any) -> str | None:
    if row.store or not row.order_no:
        return str(row.store) if row.store else None
    order = await uow.orders.get(row.order_no)
    return order.store if order else None


async def ack_exception(uow: UnitOfWork, row: Any, *, by: str, via: str, at: datetime) -> None:
    if row.resolved_at is not None:
        raise GuardRefused(f"异常 #{row.id} 已由 {await _name(uow, row.resolved_by)} 于 {hhmm(aware(row.resolved_at))} 解决。")
    if row.acknowledged_at is not None:
        who = await _name(uow, row.acknowledged_by)
        raise GuardRefused(f"异常 #{row.id} 已由 {who} 于 {hhmm(aware(row.acknowledged_at))} 认领，处理完发送：解决 {row.id}")
    x = t.exceptions.c
    await _change(uow, update(t.exceptions).where(x.id == row.id, x.acknowledged_at.is_(None), _OPEN)
                  .values(acknowledged_by=by, acknowledged_at=at), row.id)
    await uow.audit(actor=by, via=via, entity="exception", entity_id=str(row.id), action="ack", at=at,
                    from_state="open", to_state="acknowledged", detail={"order_no": row.order_no, "kind": row.kind})


async def resolve_exception(uow: UnitOfWork, row: Any, note: str, *, by: str, via: str, at: datetime) -> None:
    if row.resolved_at is not None:
        raise GuardRefused(f"异常 #{row.id} 已由 {await _name(uow, row.resolved_by)} 于 {hhmm(aware(row.resolved_at))} 解决，无需重复处理。")
    x = t.exceptions.c
    values: dict[str, Any] = {"resolved_by": by, "resolved_at": at, "resolution": note}
    if row.acknowledged_at is None:
        values.update(acknowledged_by=by, acknowledged_at=at)
    await _change(uow, update(t.exceptions).where(x.id == row.id, _OPEN).values(**values), row.id)
    before = "acknowledged" if row.acknowledged_at else "open"
    await uow.audit(actor=by, via=via, entity="exception", entity_id=str(row.id), action="resolve", at=at,
                    from_state=before, to_state="resolved", reason=note,
                    detail={"order_no": row.order_no, "kind": row.kind})


async def release_hold(uow: UnitOfWork, customer_ref: str, *, by: str, via: str, at: datetime) -> Any:
    """Clear a customer's settlement hold; returns the customer row as it was."""
    c = t.customers.c
    row = (await uow.conn.execute(
        select(t.customers).where(func.upper(c.customer_id) == customer_ref.upper())
    )).first()
    if row is None:
        raise NotFound(f"找不到客户 {customer_ref}，请核对客户编号（订单查询里可看到）。")
    if not row.settlement_hold:
        raise GuardRefused(f"客户 {row.name or row.customer_id}（{row.customer_id}）的结算没有冻结，无需解冻。")
    await _change(uow, update(t.customers).where(c.customer_id == row.customer_id, c.settlement_hold.is_(True))
                  .values(settlement_hold=False, hold_reason="", updated_at=at), row.customer_id)
    await uow.audit(actor=by, via=via, entity="customer", entity_id=row.customer_id, action="release", at=at,
                    from_state="held", to_state="released", reason=row.hold_reason)
    return row


async def _change(uow: UnitOfWork, stmt: Any, what: object) -> None:
    result = await uow.conn.execute(stmt)
    if result.rowcount != 1:
        raise Conflict(f"{what} 刚被其他人处理过，请刷新后再看。")


async def _name(uow: UnitOfWork, userid: str | None) -> str:
    if not userid:
        return "系统"
    user = await uow.users.get(userid)
    return user.name if user and user.name else userid
