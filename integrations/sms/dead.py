"""A text that could not be sent becomes customer service's task: an 异常 (kind sms_failed) naming the order, and a
push to everyone with the role `service` (the managers when there is nobody), so someone phones the customer.

`on_dead` for the dispatcher (beside the managers' DeadRowWarnings), and `report()` at start-up for rows that died
before a restart. Each row is told once, across replicas: its mark "sms-dead-told:<id>" commits with the task.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy import String, cast, exists, literal, select

from domain.chat import Reply
from domain.clock import utcnow
from domain.customers import masked_phone
from domain.outbox import ChatPush
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.marks import mark_once
from integrations.db.uow import UnitOfWork
from integrations.delivery.rows import OutboxRow
from integrations.sms.outbox import CHANNEL

log = logging.getLogger(__name__)

KIND = "sms_failed"
TOLD_MARK = "sms-dead-told:"
SERVICE, FALLBACK = "service", "manager"
WHAT = {"order_shipped": "发货通知", "address_changed": "改址通知", "refund_approved": "退款通知"}


class SmsDeadRows:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow, horizon_s: float = 2 * 86400) -> None:
        self._db = db
        self._clock = clock
        self._horizon = timedelta(seconds=horizon_s)

    async def __call__(self, row: OutboxRow) -> None:
        if row.channel == CHANNEL:
            await self.report()

    async def report(self) -> int:
        """Open a task for each dead text not told yet; returns how many."""
        now = self._clock()
        async with UnitOfWork(self._db) as uow:
            dead = await self._untold(uow, now)
            won = await mark_once(uow.conn, [f"{TOLD_MARK}{row.id}" for row in dead], now) if dead else set()
            dead = [row for row in dead if f"{TOLD_MARK}{row.id}" in won]
            if not dead:
                return 0
            people = await uow.users.list(role=SERVICE) or await uow.users.list(role=FALLBACK)
            for row in dead:
                text = task_text(row)
                await uow.incidents.open(kind=KIND, message=text, at=now, order_no=_order_no(row))
                for person in people:
                    await uow.send(ChatPush(person.userid, Reply(text), f"sms-dead:{row.id}:{person.userid}"), at=now)
            await uow.commit()
        log.warning("%d customer texts could not be sent; customer service has a task for each", len(dead))
        return len(dead)

    async def _untold(self, uow: UnitOfWork, now: datetime) -> list[OutboxRow]:
        c, marks = t.outbox.c, t.alert_marks.c
        told = exists().where(marks.key == literal(TOLD_MARK) + cast(c.id, String))
        stmt = (select(t.outbox).where(c.channel == CHANNEL, c.status == "dead", c.created_at >= now - self._horizon, ~told)
                .order_by(c.id).limit(200))
        return [OutboxRow.from_mapping(r._mapping) for r in await uow.conn.execute(stmt)]


def _order_no(row: OutboxRow) -> str | None:
    return str(row.payload.get("order_no") or "") or None


def task_text(row: OutboxRow) -> str:
    order = _order_no(row)
    about = f"订单 {order} 的" if order else ""
    reason = row.last_error[:120]
    return (f"客户短信未发出：{about}{WHAT.get(row.kind, row.kind)}发往 {masked_phone(row.recipient)} 失败"
            f"（{reason}）。请电话告知客户，并核对手机号。")


def both(*hooks: Callable[[OutboxRow], Awaitable[None]]) -> Callable[[OutboxRow], Awaitable[None]]:
    """One `on_dead` for the dispatcher that calls each hook in turn (a failing hook does not stop the next)."""

    async def call(row: OutboxRow) -> None:
        for hook in hooks:
            try:
                await hook(row)
            except Exception:
                log.exception("on_dead hook failed for outbox row %s", row.id)

    return call
