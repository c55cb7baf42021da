"""What waits for whom: the 待办, 异常 and 概况 answers, and the small use cases on incidents (异常) and holds.

Each function reads (or changes) through the caller's unit of work (its read models and repositories) and
returns short Chinese lines; the rows come from integrations/db/views.py, the wording stays here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain import facts
from domain.clock import hhmm, local
from domain.customers import Customer
from domain.errors import Conflict, GuardRefused, InvalidInput, NotFound
from domain.incidents import Incident
from domain.order_lifecycle import IN_WAREHOUSE, ORDER_LIFECYCLE
from handlers.aftersales import yuan
from handlers.unit_of_work import AbstractUnitOfWork

MAX_LINES = 10
PIN = "🔴 "
EXCEPTION_KINDS = {
    "out_of_stock": "缺货", "purchase_request": "补货申请", "stuck_order": "卡单",
    "logistics_conflict": "物流冲突",
    "address_unresolved": "地址不详", "address_unverified": "地址未核验",
    "channel_order": "渠道订单未导入",
    "sms_failed": "短信未发出",
    "print_failed": "面单未打印",
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
    if then is not None and then.tzinfo is None:  # SQLite hands back naive UTC
        then = then.replace(tzinfo=UTC)
    minutes = int(((now - (then or now)).total_seconds()) // 60)
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


def _with_more(lines: list[str], total: int, hint: str) -> list[str]:
    return lines + [f"另有 {total - len(lines)} 条，{hint}"] if total > len(lines) else lines


async def warehouse_tasks(uow: AbstractUnitOfWork, store: str, now: datetime) -> list[str]:
    """The store's orders in the warehouse: address changes and open incidents pinned on top, then oldest."""
    total, rows = await uow.views.warehouse_orders(store, IN_WAREHOUSE, MAX_LINES)
    lines = []
    for r in rows:
        why = "（改址待换面单）" if r.address_change_pending else ""
        why += f"（异常 #{r.incident_id}）" if r.incident_id else ""
        label = ORDER_LIFECYCLE.label(r.state)
        lines.append(f"{PIN if why else ''}{r.order_no} {label}{why} · {ago(r.created_at, now)} → {next_step(r).text}")
    return _with_more(lines, total, "先处理上面的。")


async def approval_tasks(uow: AbstractUnitOfWork, now: datetime) -> list[str]:
    rows = await uow.views.pending_approvals()
    lines = [
        f"{r.aftersale_no} {AFTERSALE_KINDS.get(r.kind, r.kind)} {yuan(r.amount_fen)}（订单 {r.order_no}）· "
        f"{ago(r.created_at, now)} → 同意 {r.aftersale_no} / 拒绝 {r.aftersale_no} [原因]"
        for r in rows[:MAX_LINES]
    ]
    return _with_more(lines, len(rows), "发送「待办」处理完后再看。")


async def open_exceptions(
    uow: AbstractUnitOfWork, *, kinds: tuple[str, ...] = (), order_no: str | None = None
) -> list[Incident]:
    """Unresolved incidents, newest first."""
    return await uow.incidents.list_open(kinds=kinds, order_no=order_no)


def exception_line(r: Incident, now: datetime) -> str:
    kind = EXCEPTION_KINDS.get(r.kind, r.kind)
    order = f" {r.order_no}" if r.order_no else ""
    acked = "（已认领）" if r.acknowledged_at else ""
    mark = PIN if r.severity == "critical" else ""
    message = r.message.removeprefix(f"订单 {r.order_no} ") if r.order_no else r.message
    return f"{mark}#{r.id} {kind}{order}{acked}：{message} · {ago(r.opened_at, now)}"


async def exception_lines(uow: AbstractUnitOfWork, now: datetime, *, kinds: tuple[str, ...] = ()) -> list[str]:
    rows = await open_exceptions(uow, kinds=kinds)
    return _with_more([exception_line(r, now) for r in rows[:MAX_LINES]], len(rows), "先处理最新的。")


async def address_change_tasks(uow: AbstractUnitOfWork, now: datetime) -> list[str]:
    rows = await uow.views.address_changes()
    lines = [f"{r.order_no} 改址待门店 {r.store or '-'} 换贴面单 · {ago(r.updated_at, now)} → 查询 {r.order_no}"
             for r in rows[:MAX_LINES]]
    return _with_more(lines, len(rows), "")


async def held_customers(uow: AbstractUnitOfWork) -> list[str]:
    rows = await uow.customers.held()
    lines = [f"客户 {r.name or r.customer_id}（{r.customer_id}）结算冻结：{r.hold_reason or '待核实'}"
             for r in rows[:MAX_LINES]]
    return _with_more(lines, len(rows), "")


async def summary_lines(uow: AbstractUnitOfWork, now: datetime) -> list[str]:
    """Today's orders by state, open incidents, and today's state-jump anomalies (refused illegal triggers)."""
    day = await uow.views.summary(start_of_today(now))
    by_state = day.by_state
    states = " · ".join(f"{ORDER_LIFECYCLE.label(s)} {by_state[s]}" for s in ORDER_LIFECYCLE.states if s in by_state)
    return [
        f"今日概况（截至 {hhmm(now)}）",
        f"新订单 {day.created} 单；今日有变动 {sum(by_state.values())} 单",
        states or "今日还没有订单变动",
        f"未处理异常 {day.open_incidents} 条 · 今日状态跳变异常 {day.state_jumps} 次",
    ]


# ---- incidents and settlement holds: changed by people in chat, each change audited

async def load_exception(uow: AbstractUnitOfWork, ref: str) -> Incident:
    digits = ref.lstrip("#")
    if not digits.isdigit():
        raise InvalidInput("异常编号应是数字，例如：确认 12（发送「异常」查看编号）。")
    incident = await uow.incidents.get(int(digits))
    if incident is None:
        raise NotFound(f"找不到异常 #{digits}，发送「异常」查看未处理的异常。")
    return incident


async def exception_store(uow: AbstractUnitOfWork, row: Incident) -> str | None:
    if row.store or not row.order_no:
        return str(row.store) if row.store else None
    order = await uow.orders.get(row.order_no)
    return order.store if order else None


async def ack_exception(uow: AbstractUnitOfWork, row: Incident, *, by: str, via: str, at: datetime) -> None:
    if row.resolved_at is not None:
        raise GuardRefused(f"异常 #{row.id} 已由 {await _name(uow, row.resolved_by)} 于 {hhmm(row.resolved_at)} 解决。")
    if row.acknowledged_at is not None:
        who = await _name(uow, row.acknowledged_by)
        raise GuardRefused(f"异常 #{row.id} 已由 {who} 于 {hhmm(row.acknowledged_at)} 认领，处理完发送：解决 {row.id}")
    row.acknowledge(by, at)
    if not await uow.incidents.acknowledge(row):
        raise Conflict(f"{row.id} 刚被其他人处理过，请刷新后再看。")
    uow.emit(facts.IncidentAcknowledged(row.id, row.kind, row.order_no))


async def resolve_exception(
    uow: AbstractUnitOfWork, row: Incident, note: str, *, by: str, via: str, at: datetime
) -> None:
    if row.resolved_at is not None:
        raise GuardRefused(f"异常 #{row.id} 已由 {await _name(uow, row.resolved_by)} 于 {hhmm(row.resolved_at)} 解决，无需重复处理。")
    before = row.resolve(by, at, note)
    if not await uow.incidents.resolve(row):
        raise Conflict(f"{row.id} 刚被其他人处理过，请刷新后再看。")
    uow.emit(facts.IncidentResolved(row.id, row.kind, row.order_no, before, note))


async def release_hold(uow: AbstractUnitOfWork, customer_ref: str, *, by: str, via: str, at: datetime) -> Customer:
    """Clear a customer's settlement hold; returns the customer as it was."""
    customer = await uow.customers.find(customer_ref)
    if customer is None:
        raise NotFound(f"找不到客户 {customer_ref}，请核对客户编号（订单查询里可看到）。")
    if not customer.settlement_hold:
        raise GuardRefused(f"客户 {customer.name or customer.customer_id}（{customer.customer_id}）的结算没有冻结，无需解冻。")
    if not await uow.customers.release(customer.customer_id, at):
        raise Conflict(f"{customer.customer_id} 刚被其他人处理过，请刷新后再看。")
    uow.emit(facts.SettlementReleased(customer.customer_id, customer.hold_reason))
    return customer


async def _name(uow: AbstractUnitOfWork, userid: str | None) -> str:
    if not userid:
        return "系统"
    user = await uow.users.get(userid)
    return user.name if user and user.name else userid
