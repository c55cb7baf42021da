"""Stuck orders and unacknowledged exceptions: the jobs that bring a forgotten problem back to a person."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from sqlalchemy import and_, insert, or_, select

from domain.chat import Button, Card, Reply
from domain.clock import local
from domain.order_lifecycle import IN_WAREHOUSE, ORDER_LIFECYCLE
from handlers.bus import Deps
from handlers.notify import notify_role
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.marks import mark_once
from integrations.db.uow import UnitOfWork

DIGEST_LINES = 20
CRITICAL = '<font color="warning">严重</font> '


def responsible_role(state: str) -> str:
    """The warehouse of the order's store while it is in the warehouse; the supervisor otherwise."""
    return "warehouse" if state in IN_WAREHOUSE else "supervisor"


async def stuck_orders(db: Database, deps: Deps, sla_minutes: Mapping[str, int]) -> int:
    """Tell the responsible person about each order past its state's SLA, once per order and state."""
    now = deps.now
    o = t.orders.c
    overdue = or_(*(
        and_(o.state == state, o.updated_at < now - timedelta(minutes=minutes))
        for state, minutes in sla_minutes.items()
    ))
    async with UnitOfWork(db) as uow:
        rows = (await uow.conn.execute(
            select(o.order_no, o.state, o.store, o.updated_at).where(overdue).order_by(o.order_no)
        )).all()
        fresh = await mark_once(uow.conn, [f"stuck:{r.order_no}:{r.state}" for r in rows], now)
        rows = [r for r in rows if f"stuck:{r.order_no}:{r.state}" in fresh]
        if rows:
            await uow.conn.execute(insert(t.exceptions), [
                {"kind": "stuck_order", "order_no": r.order_no, "sku": None, "store": r.store, "severity": "warning",
                 "message": _stuck_text(r.order_no, r.state, sla_minutes[r.state]), "opened_at": now, "resolution": ""}
                for r in rows
            ])
        for r in rows:
            card = Card(
                title=f"卡单提醒 · {r.order_no}",
                description=_stuck_text(r.order_no, r.state, sla_minutes[r.state]),
                task_id=f"stuck-{r.order_no}-{r.state}",
                fields=(("状态", ORDER_LIFECYCLE.label(r.state)), ("进入时间", f"{local(r.updated_at):%m-%d %H:%M}"),
                        ("门店", r.store or "-")),
                buttons=(Button(f"status {r.order_no}", "查看订单", 2),),
                highlight=r.state == "delivery_exception",
            )
            role = responsible_role(r.state)
            told = await notify_role(uow, deps, role, card, store=r.store if role == "warehouse" else None,
                                     dedup_key=f"stuck:{r.order_no}:{r.state}")
            if not told:  # nobody of that store is registered: the supervisor must know
                await notify_role(uow, deps, "supervisor", card, dedup_key=f"stuck:{r.order_no}:{r.state}")
        await uow.commit()
    return len(rows)


def _stuck_text(order_no: str, state: str, minutes: int) -> str:
    return f"订单 {order_no} 在「{ORDER_LIFECYCLE.label(state)}」已超过 {minutes} 分钟，请尽快处理。"


async def escalate_exceptions(db: Database, deps: Deps, ack_minutes: int) -> int:
    """Open exceptions nobody acknowledged within `ack_minutes` go to the managers, each once, in one digest."""
    now = deps.now
    x = t.exceptions.c
    async with UnitOfWork(db) as uow:
        rows = (await uow.conn.execute(
            select(x.id, x.kind, x.severity, x.order_no, x.message, x.opened_at)
            .where(x.acknowledged_at.is_(None), x.resolved_at.is_(None),
                   x.opened_at < now - timedelta(minutes=ack_minutes))
            .order_by(x.id)
        )).all()
        fresh = await mark_once(uow.conn, [f"escalated:{r.id}" for r in rows], now)
        rows = [r for r in rows if f"escalated:{r.id}" in fresh]
        if rows:
            lines = [
                f"- {CRITICAL if r.severity == 'critical' else ''}"
                f"{local(r.opened_at):%H:%M} {r.message}"
                for r in rows[:DIGEST_LINES]
            ]
            more = f"\n另有 {len(rows) - DIGEST_LINES} 条，发送「异常」查看全部。" if len(rows) > DIGEST_LINES else ""
            text = (f"**异常升级**：{len(rows)} 条异常超过 {ack_minutes} 分钟无人确认\n" + "\n".join(lines) + more)
            await notify_role(uow, deps, "manager", Reply(text, markdown=True),
                              dedup_key=f"escalated:{rows[0].id}-{rows[-1].id}")
        await uow.commit()
    return len(rows)
