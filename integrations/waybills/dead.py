"""An e-waybill that could not be taken becomes the store's task: an 异常 (kind waybill_failed) and a card to the
store's warehouse staff (the supervisors when the store has none) with the provider's own error text and the two
ways on: 重打 <单号> to try again, or 发货 <单号> <运单号> with a hand-written waybill.

`on_dead` for the dispatcher, and `report()` at start-up for rows that died before a restart. Each row is told
once, across replicas: its mark "waybill-dead-told:<id>" commits with the task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import String, cast, exists, literal, select

from domain.chat import Card
from domain.chat_commands import ReprintLabel, button
from domain.clock import utcnow
from domain.outbox import ChatPush
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.marks import mark_once
from integrations.db.uow import UnitOfWork
from integrations.delivery.rows import OutboxRow
from integrations.waybills.sender import CHANNEL

log = logging.getLogger(__name__)

KIND = "waybill_failed"
TOLD_MARK = "waybill-dead-told:"
STAFF, FALLBACK = "warehouse", "supervisor"


class WaybillDeadRows:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow, horizon_s: float = 2 * 86400) -> None:
        self._db = db
        self._clock = clock
        self._horizon = timedelta(seconds=horizon_s)

    async def __call__(self, row: OutboxRow) -> None:
        if row.channel == CHANNEL:
            await self.report()

    async def report(self) -> int:
        now = self._clock()
        async with UnitOfWork(self._db) as uow:
            dead = await self._untold(uow, now)
            won = await mark_once(uow.conn, [f"{TOLD_MARK}{row.id}" for row in dead], now) if dead else set()
            dead = [row for row in dead if f"{TOLD_MARK}{row.id}" in won]
            if not dead:
                return 0
            for row in dead:
                store, order_no = row.recipient, str(row.payload.get("order_no", ""))
                people = await uow.users.list(role=STAFF, store=store) or await uow.users.list(role=FALLBACK)
                card = task_card(row)
                await uow.incidents.open(kind=KIND, message=card.description, at=now, order_no=order_no or None,
                                         store=store, severity="critical")
                for person in people:
                    await uow.send(ChatPush(person.userid, card, f"waybill-dead:{row.id}:{person.userid}",
                                            urgent=True), at=now)
            await uow.commit()
        log.warning("%d e-waybills could not be taken; the stores' warehouse staff have a task for each", len(dead))
        return len(dead)

    async def _untold(self, uow: UnitOfWork, now: datetime) -> list[OutboxRow]:
        c, marks = t.outbox.c, t.alert_marks.c
        told = exists().where(marks.key == literal(TOLD_MARK) + cast(c.id, String))
        stmt = (select(t.outbox).where(c.channel == CHANNEL, c.status == "dead", c.created_at >= now - self._horizon,
                                       ~told).order_by(c.id).limit(200))
        return [OutboxRow.from_mapping(r._mapping) for r in await uow.conn.execute(stmt)]


def task_card(row: OutboxRow) -> Card:
    order_no = str(row.payload.get("order_no", ""))
    reason = row.last_error[:160]
    return Card(
        title=f"电子面单未取到 · {order_no}",
        description=(f"订单 {order_no} 的电子面单取号失败：{reason}。核对门店和收货地址后点“重新取号”，"
                     f"或手写运单后发送：发货 {order_no} <运单号>"),
        task_id=f"waybill-dead-{row.id}",
        fields=(("门店", row.recipient), ("收货地址", str(row.payload.get("receiver", {}).get("address", "")))),
        buttons=(button(ReprintLabel, order_no, text="重新取号"),),
        highlight=True,
    )
