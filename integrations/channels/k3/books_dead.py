"""A document K3 would not book becomes finance's task: an 异常 (kind k3_failed) naming the order, and a card to
everyone with the role `finance` (the managers when there is nobody) carrying K3's own error message, so someone
books it by hand or fixes the base data (customer, material, organisation) and books it again.

`on_dead` for the dispatcher (beside the managers' DeadRowWarnings), and `report()` at start-up for rows that died
before a restart. Each row is told once, across replicas: its mark "k3-dead-told:<id>" commits with the task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import String, cast, exists, literal, select

from domain.chat import Card
from domain.chat_commands import QueryOrder, button
from domain.clock import utcnow
from domain.outbox import ChatPush
from integrations.channels.k3.books import KIND_LABELS
from integrations.channels.k3.books_outbox import CHANNEL
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.marks import mark_once
from integrations.db.uow import UnitOfWork
from integrations.delivery.rows import OutboxRow

log = logging.getLogger(__name__)

KIND = "k3_failed"
TOLD_MARK = "k3-dead-told:"
FINANCE, FALLBACK = "finance", "manager"


class K3DeadRows:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow, horizon_s: float = 7 * 86400) -> None:
        self._db = db
        self._clock = clock
        self._horizon = timedelta(seconds=horizon_s)

    async def __call__(self, row: OutboxRow) -> None:
        if row.channel == CHANNEL:
            await self.report()

    async def report(self) -> int:
        """Open a task for each dead K3 row not told yet; returns how many."""
        now = self._clock()
        async with UnitOfWork(self._db) as uow:
            dead = await self._untold(uow, now)
            won = await mark_once(uow.conn, [f"{TOLD_MARK}{row.id}" for row in dead], now) if dead else set()
            dead = [row for row in dead if f"{TOLD_MARK}{row.id}" in won]
            if not dead:
                return 0
            people = await uow.users.list(role=FINANCE) or await uow.users.list(role=FALLBACK)
            for row in dead:
                order_no = str(row.payload.get("order_no") or "")
                await uow.incidents.open(kind=KIND, message=task_text(row), at=now, order_no=order_no or None)
                for person in people:
                    await uow.send(ChatPush(person.userid, task_card(row), f"k3-dead:{row.id}:{person.userid}"), at=now)
            await uow.commit()
        log.warning("%d documents could not be booked in K3; finance has a task for each", len(dead))
        return len(dead)

    async def _untold(self, uow: UnitOfWork, now: datetime) -> list[OutboxRow]:
        c, marks = t.outbox.c, t.alert_marks.c
        told = exists().where(marks.key == literal(TOLD_MARK) + cast(c.id, String))
        stmt = (select(t.outbox).where(c.channel == CHANNEL, c.status == "dead", c.created_at >= now - self._horizon,
                                       ~told).order_by(c.id).limit(200))
        return [OutboxRow.from_mapping(r._mapping) for r in await uow.conn.execute(stmt)]


def _what(row: OutboxRow) -> str:
    order_no, ref = row.payload.get("order_no", ""), row.payload.get("ref", "")
    doc = KIND_LABELS.get(row.kind, row.kind)
    return f"订单 {order_no} 的{doc}" if ref == order_no else f"售后单 {ref}（订单 {order_no}）的{doc}"


def task_text(row: OutboxRow) -> str:
    return f"金蝶记账失败：{_what(row)}未记入 K3。K3 原话：{row.last_error[:300]}。请核对后在 K3 手工补记。"


def task_card(row: OutboxRow) -> Card:
    order_no = str(row.payload.get("order_no") or "")
    amount = int(row.payload.get("amount_fen") or 0)
    return Card(
        title="金蝶记账失败",
        description=f"{_what(row)}未记入 K3，请核对客户、物料、组织后在 K3 手工补记。",
        task_id=f"k3-dead-{row.id}",
        fields=(("K3 原话", row.last_error[:300]), ("金额", f"¥{amount / 100:,.2f}"),
                ("客户", str(row.payload.get("k3_customer") or row.payload.get("customer_id") or ""))),
        buttons=(button(QueryOrder, order_no, text="查询订单"),) if order_no else (),
        highlight=True,
    )
