"""Stuck orders and unacknowledged incidents: the jobs that bring a forgotten problem back to a person."""

from __future__ import annotations

from datetime import timedelta

from domain import commands as c
from domain.chat import Card, Reply
from domain.chat_commands import QueryOrder
from domain.chat_commands import button as command_button
from domain.clock import local
from domain.incidents import Incident
from domain.order_lifecycle import IN_WAREHOUSE, ORDER_LIFECYCLE
from handlers.bus import Deps, Router
from handlers.notify import notify_role
from handlers.unit_of_work import AbstractUnitOfWork

router = Router()
DIGEST_LINES = 20
CRITICAL = '<font color="warning">严重</font> '


def responsible_role(state: str) -> str:
    """The warehouse of the order's store while it is in the warehouse; the supervisor otherwise."""
    return "warehouse" if state in IN_WAREHOUSE else "supervisor"


@router.command(c.FlagStuckOrders)
async def flag_stuck_orders(cmd: c.FlagStuckOrders, uow: AbstractUnitOfWork, deps: Deps) -> int:
    """Tell the responsible person about each order past its state's SLA, once per order and state."""
    now, sla = deps.now, dict(cmd.sla_minutes)
    rows = await uow.views.overdue_orders(sla, now)
    fresh = await uow.marks.once([f"stuck:{r.order_no}:{r.state}" for r in rows], now)
    rows = [r for r in rows if f"stuck:{r.order_no}:{r.state}" in fresh]
    await uow.incidents.add_many([
        Incident("stuck_order", _stuck_text(r.order_no, r.state, sla[r.state]), now, order_no=r.order_no, store=r.store)
        for r in rows
    ])
    for r in rows:
        card = Card(
            title=f"卡单提醒 · {r.order_no}",
            description=_stuck_text(r.order_no, r.state, sla[r.state]),
            task_id=f"stuck-{r.order_no}-{r.state}",
            fields=(("状态", ORDER_LIFECYCLE.label(r.state)), ("进入时间", f"{local(r.updated_at):%m-%d %H:%M}"),
                    ("门店", r.store or "-")),
            buttons=(command_button(QueryOrder, r.order_no, text="查看订单", style=2),),
            highlight=r.state == "delivery_exception",
        )
        role = responsible_role(r.state)
        told = await notify_role(uow, deps, role, card, store=r.store if role == "warehouse" else None,
                                 dedup_key=f"stuck:{r.order_no}:{r.state}", urgent=True)
        if not told:  # nobody of that store is registered: the supervisor must know
            await notify_role(uow, deps, "supervisor", card, dedup_key=f"stuck:{r.order_no}:{r.state}", urgent=True)
    return len(rows)


def _stuck_text(order_no: str, state: str, minutes: int) -> str:
    return f"订单 {order_no} 在「{ORDER_LIFECYCLE.label(state)}」已超过 {minutes} 分钟，请尽快处理。"


@router.command(c.EscalateIncidents)
async def escalate_incidents(cmd: c.EscalateIncidents, uow: AbstractUnitOfWork, deps: Deps) -> int:
    """Open incidents nobody acknowledged within `ack_minutes` go to the managers, each once, in one digest."""
    now = deps.now
    rows = await uow.incidents.unacknowledged_since(now - timedelta(minutes=cmd.ack_minutes))
    fresh = await uow.marks.once([f"escalated:{r.id}" for r in rows], now)
    rows = [r for r in rows if f"escalated:{r.id}" in fresh]
    if rows:
        lines = [
            f"- {CRITICAL if r.severity == 'critical' else ''}{local(r.opened_at):%H:%M} {r.message}"
            for r in rows[:DIGEST_LINES]
        ]
        more = f"\n另有 {len(rows) - DIGEST_LINES} 条，发送「异常」查看全部。" if len(rows) > DIGEST_LINES else ""
        text = (f"**异常升级**：{len(rows)} 条异常超过 {cmd.ack_minutes} 分钟无人确认\n" + "\n".join(lines) + more)
        await notify_role(uow, deps, "manager", Reply(text, markdown=True),
                          dedup_key=f"escalated:{rows[0].id}-{rows[-1].id}", urgent=True)
    return len(rows)
