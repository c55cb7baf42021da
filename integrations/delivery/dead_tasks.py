"""Dead outbox rows of one channel become tasks for people: the base every outbound effect's dead-row handling
shares (texts → customer service, K3 documents → finance, e-waybills and labels → the store's bench, channel
shipments → customer service).

An instance is the dispatcher's `on_dead` for its channel (beside the managers' DeadRowWarnings) and runs
`report()` at each start for rows that died before it. Each row is told once, across replicas: its mark
"<mark><id>" commits in the same transaction as the task.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import ClassVar

from sqlalchemy import String, cast, exists, literal, select

from domain.clock import utcnow
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.marks import mark_once
from integrations.db.uow import UnitOfWork
from integrations.delivery.rows import OutboxRow

log = logging.getLogger(__name__)


class DeadRowTasks:
    channel: ClassVar[str]  # the outbox channel whose dead rows this tells
    mark: ClassVar[str]  # the alert mark's prefix, e.g. "sms-dead-told:"
    told: ClassVar[str]  # the log line, with %d for how many, e.g. "%d customer texts could not be sent; …"
    horizon_s: ClassVar[float] = 2 * 86400  # dead rows older than this are not told any more

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow, horizon_s: float | None = None) -> None:
        self._db = db
        self._clock = clock
        self._horizon = timedelta(seconds=self.horizon_s if horizon_s is None else horizon_s)

    async def __call__(self, row: OutboxRow) -> None:
        if row.channel == self.channel:
            await self.report()

    async def report(self) -> int:
        """A task for each dead row not told yet; returns how many."""
        now = self._clock()
        async with UnitOfWork(self._db) as uow:
            dead = await self._untold(uow, now)
            won = await mark_once(uow.conn, [f"{self.mark}{row.id}" for row in dead], now) if dead else set()
            dead = [row for row in dead if f"{self.mark}{row.id}" in won]
            if not dead:
                return 0
            await self.tell(uow, dead, now)
            await uow.commit()
        log.warning(self.told, len(dead))
        return len(dead)

    async def tell(self, uow: UnitOfWork, dead: list[OutboxRow], now: datetime) -> None:
        """Open the 异常 and send the tasks for these rows, in `uow` (committed with their marks)."""
        raise NotImplementedError

    async def _untold(self, uow: UnitOfWork, now: datetime) -> list[OutboxRow]:
        c, marks = t.outbox.c, t.alert_marks.c
        told = exists().where(marks.key == literal(self.mark) + cast(c.id, String))
        stmt = (select(t.outbox).where(c.channel == self.channel, c.status == "dead",
                                       c.created_at >= now - self._horizon, ~told).order_by(c.id).limit(200))
        return [OutboxRow.from_mapping(r._mapping) for r in await uow.conn.execute(stmt)]


def both(*hooks: Callable[[OutboxRow], Awaitable[None]]) -> Callable[[OutboxRow], Awaitable[None]]:
    """One `on_dead` for the dispatcher that calls each hook in turn (a failing hook does not stop the next)."""

    async def call(row: OutboxRow) -> None:
        for hook in hooks:
            try:
                await hook(row)
            except Exception:
                log.exception("on_dead hook failed for outbox row %s", row.id)

    return call
