"""From a platform-neutral inbound message to a chat use case: store it, acknowledge, work after.

The edge calls `accept` before answering the platform; processing runs in a task kept referenced until
done. A message stored but never processed (the process died) is replayed by `replay_stale`.

Every accepted message ends answered or parked: a failed attempt is counted on its inbox row and retried
after a growing delay; after `max_attempts` (a replay at start-up counts as one) the message is parked as
dead, the managers get one digest through the outbox, and it is never replayed again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.parser import command_for
from domain.chat import InboundMessage
from domain.clock import utcnow
from domain.errors import DomainError
from domain.limits import MESSAGE_ID, USERID
from handlers.bus import MessageBus
from handlers.chat_router import DeadMessage, report_dead_messages
from integrations.db import inbox
from integrations.db.engine import Database

log = logging.getLogger(__name__)
MAX_RETRY_DELAY_S = 600.0


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
        pace: Callable[[], Awaitable[None]] | None = None, max_attempts: int = 5, retry_delay_s: float = 5.0,
    ) -> None:
        self.db = db
        self.bus = bus
        self.delivered = delivered  # wakes the outbox dispatcher so replies leave at once
        self.inbox = inbox.InboxWriter(db)
        self.max_attempts = max_attempts
        self.retry_delay_s = retry_delay_s
        self._queue: asyncio.Queue[tuple[InboundMessage, bool]] = asyncio.Queue()  # (message, replayed)
        self._size = workers
        self._workers: list[asyncio.Task[None]] = []
        self._retries: set[asyncio.Task[None]] = set()
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

    def _spawn(self, msg: InboundMessage, *, replayed: bool = False) -> None:
        if not self._workers:
            self._workers = [asyncio.create_task(self._work()) for _ in range(self._size)]
        self._queue.put_nowait((msg, replayed))

    async def _work(self) -> None:
        while True:
            msg, replayed = await self._queue.get()
            try:
                if self._pace is not None:
                    await self._pace()
                await self.process(msg, replayed=replayed)
            finally:
                self._queue.task_done()

    async def process(self, msg: InboundMessage, *, replayed: bool = False) -> None:
        try:
            await self.bus.handle(command_for(msg))
        except DomainError as err:  # the bus raises a chat refusal only when it could not answer it
            log.warning("%s message %s refused but not answered: %s", msg.platform, msg.message_id, err.reason)
            await self._failed(msg, err, replayed)
        except Exception as err:
            log.exception("processing %s message %s failed", msg.platform, msg.message_id)
            await self._failed(msg, err, replayed)
        finally:
            self.delivered()

    async def _failed(self, msg: InboundMessage, err: Exception, replayed: bool) -> None:
        """Count the attempt; retry later, or park the message after its last attempt and tell the managers."""
        try:
            async with self.bus.uow_factory() as uow:
                row = await uow.inbox.record_failure(
                    msg.platform, msg.message_id, utcnow(), max_attempts=self.max_attempts,
                    error=f"{type(err).__name__}: {err}", counted=replayed,
                )
                if row is not None and row["parked"]:
                    await report_dead_messages(uow, self.bus.deps, [_dead(row)])
                await uow.commit()
        except Exception:
            log.exception("could not count the failed attempt of %s message %s; it waits for replay",
                          msg.platform, msg.message_id)
            return
        if row is None:
            return  # handled (or parked) meanwhile
        if row["parked"]:
            log.warning("%s message %s parked as dead after %d attempts", msg.platform, msg.message_id,
                        row["attempts"])
            return  # the digest leaves with the dispatcher, woken by process()
        delay = min(self.retry_delay_s * 2 ** (row["attempts"] - 1), MAX_RETRY_DELAY_S)
        log.info("%s message %s: attempt %d failed, retrying in %.0f s", msg.platform, msg.message_id,
                 row["attempts"], delay)
        retry = asyncio.create_task(self._retry_later(msg, delay))
        self._retries.add(retry)
        retry.add_done_callback(self._retries.discard)

    async def _retry_later(self, msg: InboundMessage, delay: float) -> None:
        await asyncio.sleep(delay)
        self._spawn(msg)

    async def replay_stale(self, older_than_s: float = 30) -> int:
        """At start-up: park what has had its last attempt (one digest to the managers), replay the rest."""
        now = utcnow()
        async with self.bus.uow_factory() as uow:
            dead = await uow.inbox.park_exhausted(now, older_than_s, self.max_attempts)
            await report_dead_messages(uow, self.bus.deps, [_dead(r) for r in dead])
            rows = await uow.inbox.start_replay(now, older_than_s)
            await uow.commit()
        if dead:
            log.warning("%d inbound messages parked as dead after %d attempts", len(dead), self.max_attempts)
            self.delivered()
        for row in rows:
            self._spawn(InboundMessage(**row["payload"]), replayed=True)
        return len(rows)

    async def drain(self) -> None:
        """Wait until every queued message has been processed, retries included."""
        while True:
            await self._queue.join()
            if not self._retries:
                return
            await asyncio.gather(*self._retries, return_exceptions=True)

    async def stop(self) -> None:
        for retry in list(self._retries):  # a message waiting for its retry stays in the inbox for replay
            retry.cancel()
        await asyncio.gather(*self._retries, return_exceptions=True)
        await self._queue.join()
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []


def _dead(row: dict[str, Any]) -> DeadMessage:
    payload = row.get("payload") or {}
    text = str(payload.get("text") or payload.get("scan_result") or payload.get("event_key") or "")
    return DeadMessage(row["platform"], row["message_id"], str(payload.get("sender", "")), text, row["attempts"])
