"""From a platform-neutral inbound message to a chat use case: store it, acknowledge, work after.

The edge calls `accept` before answering the platform; processing runs in a task kept referenced until
done. The stored row is leased to this process while the message is under way here (queued, running, or
waiting for a retry), and the lease is renewed by `sweep` (bot/inbound_sweep.py), which runs every few
seconds for as long as the process lives. A row whose lease has lapsed — its process died, or lost it while cut
off from the database — is claimed by the next sweep on any replica and queued again: no restart is needed, and
nothing is left behind however many there are or however old they are.

Every accepted message ends answered or parked: a failed attempt is counted on its inbox row and retried
after a growing delay; after `max_attempts` (a claim by the sweep counts as one) the message is parked as
dead, the managers get one digest through the outbox, and it is never taken again. A lost database
connection is not the message's fault: it is retried without counting an attempt.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.asking import Asking
from bot.inbound_sweep import InboxSweep, dead_message
from bot.parser import command_for
from bot.sender_turns import SenderTurns
from domain import log_context
from domain.chat import InboundMessage
from domain.clock import utcnow
from domain.commands import Command
from domain.errors import DomainError
from domain.limits import MESSAGE_ID, USERID
from handlers.bus import MessageBus
from handlers.chat_router import report_dead_messages
from handlers.metrics import command_name
from integrations.channels import MappingError
from integrations.db import inbox
from integrations.db.engine import Database
from integrations.db.inbox_writer import InboxWriter

log = logging.getLogger(__name__)
MAX_RETRY_DELAY_S = 600.0
CUT_RETRY_S = 0.5  # the first retry after a lost database connection; doubles while the database stays away
MAX_CUTS = 10  # lost connections in a row (~8 min) before one counts as an attempt: what only looks like one ends too


class MessageRefused(web.HTTPBadRequest):
    """A platform message the inbox cannot store as it is: 400 with a JSON reason, nothing stored.

    An HTTPException, so every route that hands a message over (WeCom, DingTalk, card clicks) answers it
    without an except clause of its own; the stream client acknowledges it as a failure."""

    def __init__(self, reason: str) -> None:
        body = json.dumps({"error": "invalid_message", "message": reason}, ensure_ascii=False)
        super().__init__(text=body, content_type="application/json")
        self.refusal = reason


class InboundQueue(InboxSweep):
    """Stored messages wait in a queue for a few workers: a burst is acknowledged at once and worked off
    at the pace the database allows, instead of hundreds of tasks fighting the acknowledgements for
    connections (and, on SQLite, for the write lock)."""

    def __init__(
        self, db: Database, bus: MessageBus, *, delivered: Callable[[], None] = lambda: None, workers: int = 4,
        pace: Callable[[], Awaitable[None]] | None = None, max_attempts: int = 5, retry_delay_s: float = 5.0,
        holder: str | None = None, lease_s: float = 15.0, sweep_batch: int = 200,
        commands: dict[str, Callable[[InboundMessage], Command[Any]]] | None = None, asking: Asking | None = None,
    ) -> None:
        self.db = db
        self.bus = bus
        self.delivered = delivered  # wakes the outbox dispatcher so replies leave at once
        self.holder = holder or default_holder()
        self.lease_s = lease_s
        self.sweep_batch = sweep_batch  # claimed per sweep at most while the queue is short; the next sweep takes more
        self.inbox = InboxWriter(db, holder=self.holder, lease_s=lease_s)
        self._stray_check: datetime | None = None  # when to look next for rows of ours we no longer have in hand
        self.max_attempts = max_attempts
        self.retry_delay_s = retry_delay_s
        # (lane, arrival, message, replayed): people's chat messages (lane 0) before order-channel pushes (lane 1),
        # each lane in arrival order, so a burst of channel pushes never holds a person's command behind it
        self._queue: asyncio.PriorityQueue[tuple[int, int, InboundMessage, bool]] = asyncio.PriorityQueue()
        self._arrivals = itertools.count()
        self._held: dict[tuple[str, str], InboundMessage] = {}  # under way here: queued, running, awaiting a retry
        self._cut_off: dict[tuple[str, str], int] = {}  # database errors in a row per message (not attempts)
        self._size = workers
        self._workers: list[asyncio.Task[None]] = []
        self._retries: set[asyncio.Task[None]] = set()
        self._pace = pace  # lets acknowledgements go first (bot/pacing.py)
        self.commands = commands or {}  # per platform that is no chat (an order channel's push): its command
        self.asking = asking  # plain questions (bot/asking.py); None: commands only
        self._turns: SenderTurns[tuple[InboundMessage, bool]] = SenderTurns()  # one person's messages in order

    async def accept(self, msg: InboundMessage) -> bool:
        """Store the message (False if seen before) and queue it for processing.

        Raises MessageRefused (a 400) for a message whose id or sender would not fit its column."""
        problem = MESSAGE_ID.problem(msg.message_id) or USERID.problem(msg.sender)
        if problem:
            log.warning("%s message refused at the edge: %s", msg.platform, problem)
            raise MessageRefused(problem)
        key = _key(msg)
        new_here = key not in self._held  # else a re-send of a message under way here: a duplicate, left as it is
        if new_here:  # in hand from before its row commits: a sweep meanwhile must not take the row for a stray
            self._held[key] = msg
        stored = False
        try:
            stored = await self.inbox.record(msg.platform, msg.message_id, dict(vars(msg)), utcnow())  # flat: no deep copy
        finally:
            if new_here and not stored:
                self._held.pop(key, None)
        if stored:
            self._spawn(msg)
        else:
            log.info("duplicate %s message %s ignored", msg.platform, msg.message_id)
        return stored

    def _spawn(self, msg: InboundMessage, *, replayed: bool = False) -> None:
        self._held[_key(msg)] = msg
        if not self._workers:
            self._workers = [asyncio.create_task(self._work()) for _ in range(self._size)]
        lane = 1 if msg.platform in self.commands else 0
        self._queue.put_nowait((lane, next(self._arrivals), msg, replayed))

    async def _work(self) -> None:
        while True:
            _, _, msg, replayed = await self._queue.get()
            item = (msg, replayed)
            try:
                sender = (msg.platform, msg.sender)
                chat = msg.platform not in self.commands  # an order channel's pushes need no per-sender order
                if chat and not self._turns.take(sender, item):
                    continue  # behind the same person's earlier message, which another worker has
                next_item: tuple[InboundMessage, bool] | None = item
                while next_item is not None:
                    if self._pace is not None:
                        await self._pace()
                    await self.process(next_item[0], replayed=next_item[1])
                    next_item = self._turns.after(sender) if chat else None
            finally:
                self._queue.task_done()

    async def process(self, msg: InboundMessage, *, replayed: bool = False) -> None:
        with log_context.about(message_id=msg.message_id):  # every line of this message's work names it
            await self._process(msg, replayed=replayed)

    async def _process(self, msg: InboundMessage, *, replayed: bool = False) -> None:
        retrying = False
        try:
            log.debug("processing %s %s from %s", msg.platform, msg.kind, msg.sender)
            if msg.platform in self.commands:  # an order channel's push
                command: Command[Any] = self.commands[msg.platform](msg)
            else:
                understander = await self.asking.understander() if self.asking is not None else None
                command = command_for(msg, understander)
            await self._handle(command)
        except MappingError as err:  # retrying cannot help: parked at once, with a report
            log.warning("%s message %s cannot be mapped: %s", msg.platform, msg.message_id, err)
            retrying = await self._failed(msg, err, replayed, final=True)
        except DomainError as err:  # the bus raises a chat refusal only when it could not answer it
            log.warning("%s message %s refused but not answered: %s", msg.platform, msg.message_id, err.reason)
            retrying = await self._failed(msg, err, replayed)
        except Exception as err:
            if inbox.connection_lost(err) and self._cut_off.get(_key(msg), 0) < MAX_CUTS:
                log.warning("%s message %s: database unreachable (%s), retrying", msg.platform, msg.message_id,
                            type(err).__name__)
                retrying = self._retry_after_cut(msg, replayed)
            else:
                log.exception("processing %s message %s failed", msg.platform, msg.message_id)
                retrying = await self._failed(msg, err, replayed)
        finally:
            if not retrying:
                self._held.pop(_key(msg), None)
                self._cut_off.pop(_key(msg), None)
            self.delivered()

    async def _handle(self, command: Command[Any]) -> None:
        """Through the bus, timed by command (whatever the outcome) for /metrics."""
        started = time.perf_counter()
        try:
            await self.bus.handle(command)
        finally:
            self.bus.deps.observer.command_handled(command_name(command), time.perf_counter() - started)

    async def _failed(self, msg: InboundMessage, err: Exception, replayed: bool, *, final: bool = False) -> bool:
        """Count the attempt; retry later, or park the message after its last attempt and tell the managers.
        True when a retry is scheduled here."""
        try:
            async with self.bus.uow_factory() as uow:
                row = await uow.inbox.record_failure(
                    msg.platform, msg.message_id, utcnow(), max_attempts=1 if final else self.max_attempts,
                    error=f"{type(err).__name__}: {err}", counted=replayed,
                )
                if row is not None and row["parked"]:
                    await report_dead_messages(uow, self.bus.deps, [dead_message(row)])
                await uow.commit()
        except Exception as count_err:
            log.warning("could not count the failed attempt of %s message %s (%s); retrying", msg.platform,
                        msg.message_id, type(count_err).__name__)
            return self._retry_after_cut(msg, replayed)
        if row is None:
            return False  # handled (or parked) meanwhile
        if row["parked"]:
            log.warning("%s message %s parked as dead after %d attempts", msg.platform, msg.message_id,
                        row["attempts"])
            return False  # the digest leaves with the dispatcher, woken by process()
        delay = min(self.retry_delay_s * 2 ** (row["attempts"] - 1), MAX_RETRY_DELAY_S)
        log.info("%s message %s: attempt %d failed, retrying in %.0f s", msg.platform, msg.message_id,
                 row["attempts"], delay)
        self._retry_later(msg, delay)
        return True

    def _retry_after_cut(self, msg: InboundMessage, replayed: bool) -> bool:
        """The database was out of reach: try again soon, growing, without spending one of the message's attempts
        (an attempt the sweep counted for this run stays counted for the next)."""
        cuts = self._cut_off[_key(msg)] = self._cut_off.get(_key(msg), 0) + 1
        self._retry_later(msg, min(CUT_RETRY_S * 2 ** (cuts - 1), MAX_RETRY_DELAY_S), replayed=replayed)
        return True

    def _retry_later(self, msg: InboundMessage, delay: float, *, replayed: bool = False) -> None:
        retry = asyncio.create_task(self._respawn(msg, delay, replayed))
        self._retries.add(retry)
        retry.add_done_callback(self._retries.discard)

    async def _respawn(self, msg: InboundMessage, delay: float, replayed: bool) -> None:
        await asyncio.sleep(delay)
        self._spawn(msg, replayed=replayed)

    async def drain(self) -> None:
        """Wait until every queued message has been processed, retries included."""
        while True:
            await self._queue.join()
            if not self._retries:
                return
            await asyncio.gather(*self._retries, return_exceptions=True)

    async def stop(self) -> None:
        for retry in list(self._retries):  # a message waiting for its retry stays in the inbox for a sweep
            retry.cancel()
        await asyncio.gather(*self._retries, return_exceptions=True)
        await self._queue.join()
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        try:  # what is left under way here is free for another replica's sweep at once
            async with self.bus.uow_factory() as uow:
                await uow.inbox.release(self.holder)
                await uow.commit()
        except Exception as err:
            log.warning("could not give up %d inbox messages (%s); they are free in %.0f s", len(self._held),
                        type(err).__name__, self.lease_s)
        self._held.clear()
        await self.inbox.close()


def default_holder() -> str:
    """This process on the inbox leases: host, pid and a random tail (two containers may share host and pid)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


def _key(msg: InboundMessage) -> tuple[str, str]:
    return msg.platform, msg.message_id
