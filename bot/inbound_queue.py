"""From a platform-neutral inbound message to a chat use case: store it, acknowledge, work after.

The edge calls `accept` before answering the platform; processing runs in a task kept referenced until
done. A message stored but never processed (the process died) is replayed by `replay_stale`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.parser import command_for
from domain.chat import InboundMessage
from domain.clock import utcnow
from domain.errors import DomainError
from domain.limits import MESSAGE_ID, USERID
from handlers.bus import MessageBus
from integrations.db import inbox
from integrations.db.engine import Database

log = logging.getLogger(__name__)


class MessageRefused(web.HTTPBadRequest):
    """A platform message the inbox cannot store as it is: 400 with a JSON reason, nothing stored.

    An HTTPException, so every route that hands a message over (WeCom, DingTalk, card clicks) answers it
    without an except clause of its own; the stream client acknowledges it as a failure."""

    def __init__(self, reason: str) -> None:
        body = json.dumps({"error": "invalid_message", "message": reason}, ensure_ascii=False)
        super().__init__(text=body, content_type="application/json")
        self.refusal = reason


class InboundQueue:
    """Stored messages wait in a queue for a few workers: a burst is acknowledged at once and worked off
    at the pace the database allows, instead of hundreds of tasks fighting the acknowledgements for
    connections (and, on SQLite, for the write lock)."""

    def __init__(
        self, db: Database, bus: MessageBus, *, delivered: Callable[[], None] = lambda: None, workers: int = 4,
        pace: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.bus = bus
        self.delivered = delivered  # wakes the outbox dispatcher so replies leave at once
        self.inbox = inbox.InboxWriter(db)
        self._queue: asyncio.Queue[InboundMessage] = asyncio.Queue()
        self._size = workers
        self._workers: list[asyncio.Task[None]] = []
        self._pace = pace  # lets acknowledgements go first (bot/pacing.py)

    async def accept(self, msg: InboundMessage) -> bool:
        """Store the message (False if seen before) and queue it for processing.

        Raises MessageRefused (a 400) for a message whose id or sender would not fit its column."""
        problem = MESSAGE_ID.problem(msg.message_id) or USERID.problem(msg.sender)
        if problem:
            log.warning("%s message refused at the edge: %s", msg.platform, problem)
            raise MessageRefused(problem)
        stored = await self.inbox.record(msg.platform, msg.message_id, dict(vars(msg)), utcnow())  # flat: no deep copy
        if stored:
            self._spawn(msg)
        else:
            log.info("duplicate %s message %s ignored", msg.platform, msg.message_id)
        return stored

    def _spawn(self, msg: InboundMessage) -> None:
        if not self._workers:
            self._workers = [asyncio.create_task(self._work()) for _ in range(self._size)]
        self._queue.put_nowait(msg)

    async def _work(self) -> None:
        while True:
            msg = await self._queue.get()
            try:
                if self._pace is not None:
                    await self._pace()
                await self.process(msg)
            finally:
                self._queue.task_done()

    async def process(self, msg: InboundMessage) -> None:
        try:
            await self.bus.handle(command_for(msg))
        except DomainError:
            pass  # refused: the bus has answered the reason in the conversation and audited it
        except Exception:
            log.exception("processing %s message %s failed; it stays in the inbox for replay",
                          msg.platform, msg.message_id)
        finally:
            self.delivered()

    async def replay_stale(self, older_than_s: float = 30) -> int:
        rows = await inbox.stale(self.db, utcnow(), older_than_s)
        for row in rows:
            self._spawn(InboundMessage(**row["payload"]))
        return len(rows)

    async def drain(self) -> None:
        """Wait until every queued message has been processed."""
        await self._queue.join()

    async def stop(self) -> None:
        await self.drain()
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
