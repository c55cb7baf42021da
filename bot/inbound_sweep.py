"""The inbound queue's sweep: every few seconds it keeps this process's inbox rows its own (one heartbeat row),
gives up rows it no longer has in hand, parks free rows that have had their last attempt and claims and queues the
rest, as many as the queue has room for (the queue itself: bot/inbound_queue.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from domain.chat import InboundMessage
from domain.clock import utcnow
from handlers.bus import MessageBus
from handlers.chat_router import DeadMessage, report_dead_messages
from integrations.db.inbox_writer import InboxWriter

log = logging.getLogger(__name__)


class InboxSweep:
    """InboundQueue's sweep and the loop that runs it: a base of InboundQueue, which sets these attributes."""

    bus: MessageBus
    inbox: InboxWriter
    holder: str
    lease_s: float
    sweep_batch: int
    max_attempts: int
    delivered: Callable[[], None]
    _queue: asyncio.PriorityQueue[tuple[int, int, InboundMessage, bool]]
    _held: dict[tuple[str, str], InboundMessage]
    _stray_check: datetime | None

    def _spawn(self, msg: InboundMessage, *, replayed: bool = False) -> None:
        raise NotImplementedError

    async def sweep(self, now: datetime | None = None) -> int:
        """Renew the lease on what is under way here; park free rows that have had their last attempt (one
        digest to the managers); claim and queue free rows, as many as the queue has room for. Returns how many
        were queued. `now` later than the clock stands for a restart after the leases lapsed (tests)."""
        now = now or utcnow()
        until = now + timedelta(seconds=self.lease_s)
        room = self.sweep_batch - self._queue.qsize()
        dead: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        renewed = False
        async with self.bus.uow_factory() as uow:
            alive = self.inbox.alive_until
            if self._held and (alive is None or alive - now <= timedelta(seconds=self.lease_s / 2)):
                await uow.inbox.renew(self.holder, until)  # one heartbeat row, however long the queue
                renewed = True
            if self._stray_check is None or now >= self._stray_check:
                self._stray_check = now + timedelta(seconds=self.lease_s)
                lost = await uow.inbox.strays(self.holder, self._held, len(self._held))
                if lost:
                    log.warning("%d inbox messages of this process were dropped unanswered; queued again", len(lost))
                    await uow.inbox.free_strays(lost, self.holder)
            if await uow.inbox.any_free(now):
                renewed = True  # claiming renews the heartbeat too
                dead = await uow.inbox.park_exhausted(now, self.max_attempts)
                await report_dead_messages(uow, self.bus.deps, [dead_message(r) for r in dead])
                rows = await uow.inbox.claim_free(self.holder, now, until, limit=room, max_attempts=self.max_attempts,
                                                  mine=self._held.keys())
            await uow.commit()
        if renewed:
            self.inbox.alive_until = until
        if dead:
            log.warning("%d inbound messages parked as dead after %d attempts", len(dead), self.max_attempts)
            self.delivered()
        fresh = [row for row in rows if (row["platform"], row["message_id"]) not in self._held]  # queued meanwhile
        for row in fresh:
            self._spawn(InboundMessage(**row["payload"]), replayed=True)
        if fresh:
            log.info("inbox sweep queued %d unprocessed messages", len(fresh))
        return len(fresh)

    async def sweep_forever(self, stop: asyncio.Event, interval_s: float) -> None:
        """Sweep now (what the last run of any replica left) and every `interval_s` until stopped; a sweep that
        fails (the database is away) is retried at the next tick, with one warning per outage."""
        failing = False
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception as err:
                if not failing:
                    log.warning("inbox sweep failed (%s: %s); retrying every %.0f s", type(err).__name__, err,
                                interval_s)
                failing = True
            else:
                if failing:
                    log.info("inbox sweep works again")
                failing = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)


def dead_message(row: dict[str, Any]) -> DeadMessage:
    """A parked inbox row as the managers' digest names it."""
    payload = row.get("payload") or {}
    text = str(payload.get("text") or payload.get("scan_result") or payload.get("event_key") or "")
    return DeadMessage(row["platform"], row["message_id"], str(payload.get("sender", "")), text, row["attempts"])
