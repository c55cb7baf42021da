"""The outbox dispatcher: claims committed outbox rows, hands them to a sender per channel, records the outcome.

Claiming and sending are separate steps: rows are claimed (claimed_until = now + claim_s) in a short
transaction, then sent with no transaction open. A process that dies mid-send leaves its rows claimed;
once the claim expires another pass sends them again, so delivery is at-least-once (WeCom's duplicate
check hides the repeat from the person). On PostgreSQL the claim uses FOR UPDATE SKIP LOCKED, so any
number of replicas can dispatch; on SQLite one process dispatches.

A failed send is retried for a window of time (retry.RetryPolicy), and each channel has a breaker
(retry.CircuitBreaker): while a channel is down its rows are neither claimed nor retried, and when it comes
back they are all due at once, so they go out oldest first, in order per recipient. The running dispatcher
(run_forever) keeps rows flowing through per-recipient lanes (lanes.Lanes): a stalled send holds only its
own recipient's later rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, or_, select, update

from domain.clock import utcnow
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.delivery import outage
from integrations.delivery.lanes import Lanes, first_of
from integrations.delivery.retry import CircuitBreaker, RetryPolicy
from integrations.delivery.rows import (
    DEFERRED_PREFIX,
    DeferDelivery,
    LostClaim,
    OutboxRow,
    PermanentDelivery,
    RecipientTrouble,
    RetryableDelivery,
    SetAside,
    shown_recipient,
)
from integrations.delivery.statements import one_statement

__all__ = [
    "DEFERRED_PREFIX", "DeferDelivery", "LostClaim", "OnDead", "OutboxDispatcher", "OutboxRow",
    "PermanentDelivery", "RetryableDelivery", "Sender", "SetAside",
]

log = logging.getLogger(__name__)


class Sender(Protocol):
    async def deliver(self, row: OutboxRow) -> None: ...


OnDead = Callable[[OutboxRow], Awaitable[None]]


class OutboxDispatcher:
    def __init__(
        self,
        db: Database,
        senders: Mapping[str, Sender],
        *,
        batch: int = 50,
        max_attempts: int | None = None,
        base_backoff_s: float = 1.0,
        max_backoff_s: float = 300,
        retry_window_s: float = 6 * 3600,
        retry: RetryPolicy | None = None,
        breaker_threshold: int = 10,
        breaker_cool_s: float = 5.0,
        breaker_max_cool_s: float = 60.0,
        claim_s: float = 60,
        clock: Callable[[], datetime] = utcnow,
        on_dead: OnDead | None = None,
        max_in_flight: int = 16,
        claim_margin_s: float = 5.0,
    ) -> None:
        self._db = db
        self._senders = dict(senders)
        self._batch = batch
        self._policy = retry or RetryPolicy(retry_window_s, base_backoff_s, max_backoff_s, max_attempts)
        self.breakers = {
            channel: CircuitBreaker(channel, threshold=breaker_threshold, cool_s=breaker_cool_s,
                                    max_cool_s=breaker_max_cool_s, clock=clock)
            for channel in self._senders
        }
        self._claim_s = claim_s
        self._clock = clock
        self._on_dead = on_dead
        self._max_in_flight = max(1, max_in_flight)
        self._claim_margin = timedelta(seconds=claim_margin_s)  # a claim this close to lapsing is re-checked
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """Something was committed: start the next pass now instead of at the end of the idle wait."""
        self._wake.set()

    async def run_forever(self, stop: asyncio.Event, idle_s: float = 0.5, drain_s: float = 8.0) -> None:
        """Claim due rows whenever fewer than `batch` are in hand; each recipient's rows go out in turn."""
        lanes = Lanes(self._deliver, self._max_in_flight)
        try:
            while not stop.is_set():
                self._wake.clear()
                lanes.freed.clear()
                room = self._batch - lanes.held
                claimed = 0
                if room > 0:
                    try:
                        for row in await self._claim(self._clock(), room):
                            lanes.add(row)
                            claimed += 1
                    except Exception:  # a database hiccup must not end delivery; the next pass retries
                        log.exception("outbox pass failed")
                        room = 1  # wait the idle time, not for a row to finish
                events = (stop, self._wake) if claimed < room else (stop, self._wake, lanes.freed)
                await first_of(*events, wait_s=idle_s)
        finally:
            unfinished = await lanes.close(drain_s)
            with contextlib.suppress(Exception):
                await self._release(unfinished)

    async def run_once(self) -> int:
        """Claim one batch of due rows and deliver them; returns how many rows were claimed."""
        rows = await self._claim(self._clock(), self._batch)
        groups: dict[str, list[OutboxRow]] = {}
        for row in rows:  # urgent rows first, then id order: each recipient's rows stay in that order
            groups.setdefault(row.recipient, []).append(row)
        if len(groups) <= 1:
            for row in rows:
                await self._deliver(row)
            return len(rows)
        in_flight = asyncio.Semaphore(self._max_in_flight)
        tasks = [asyncio.ensure_future(self._deliver_in_turn(group, in_flight)) for group in groups.values()]
        try:
            await asyncio.gather(*tasks)
        finally:  # a crash (or cancellation) of one delivery ends the pass: stop the others too
            pending = [task for task in tasks if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        return len(rows)

    async def _deliver_in_turn(self, rows: list[OutboxRow], in_flight: asyncio.Semaphore) -> None:
        """One recipient's rows, one after the other."""
        for row in rows:
            async with in_flight:
                await self._deliver(row)

    async def backlog(self) -> dict[str, int]:
        """Pending rows per channel, including channels that have no sender here."""
        c = t.outbox.c
        stmt = select(c.channel, func.count()).where(c.status == "pending").group_by(c.channel)
        async with self._db.engine.connect() as conn:
            return {channel: count for channel, count in await conn.execute(stmt)}

    async def _claim(self, now: datetime, limit: int) -> list[OutboxRow]:
        """Due rows of the channels whose breaker is closed, and one probe row per channel ready to be tried."""
        flowing = [channel for channel, breaker in self.breakers.items() if breaker.closed]
        probing = [channel for channel, breaker in self.breakers.items() if breaker.probe_wanted()]
        rows = await self._claim_of(flowing, now, limit) if flowing else []
        for channel in probing:
            rows += await self._claim_of([channel], now, 1)
        return rows

    async def _claim_of(self, channels: list[str], now: datetime, limit: int) -> list[OutboxRow]:
        """One statement: the due rows are picked (SKIP LOCKED on PostgreSQL) and claimed as they are read."""
        c = t.outbox.c
        due = (
            select(c.id)
            .where(
                c.status == "pending",
                c.channel.in_(channels),
                c.next_attempt_at <= now,
                or_(c.claimed_until.is_(None), c.claimed_until < now),
            )
            .order_by(c.urgent.desc(), c.id)  # exception pushes first, then oldest first
            .limit(limit)
        )
        if not self._db.is_sqlite:
            due = due.with_for_update(skip_locked=True)
        # A random sub-second part makes each pass's claim value its own (see OutboxRow.claimed_until).
        claim = now + timedelta(seconds=self._claim_s, microseconds=random.randrange(1, 1_000_000))
        stmt = update(t.outbox).where(c.id.in_(due)).values(claimed_until=claim).returning(*t.outbox.c)
        async with one_statement(self._db) as conn:
            found = [OutboxRow.from_mapping(r._mapping) for r in await conn.execute(stmt)]
        return sorted(found, key=lambda row: (not row.urgent, row.id))  # RETURNING keeps no order

    async def _deliver(self, row: OutboxRow) -> None:
        breaker = self.breakers[row.channel]
        if not breaker.admits(row.id):
            await self._settle(row)  # the channel is down: hand the row back untried, no attempt counted
            return
        lapsing = row.claimed_until is None or self._clock() >= row.claimed_until - self._claim_margin
        if lapsing and not await self._still_ours(row):
            breaker.neutral(row.id)
            return  # the claim lapsed and someone else took the row (or merged it into a digest)
        try:
            await self._senders[row.channel].deliver(row)
        except LostClaim:
            breaker.neutral(row.id)
            log.debug("outbox row %s left our hands before it was sent", row.id)
        except DeferDelivery as deferral:
            breaker.neutral(row.id)
            await self._settle(
                row, next_attempt_at=deferral.until, last_error=DEFERRED_PREFIX + str(deferral)
            )
        except SetAside as aside:
            breaker.neutral(row.id)
            await self._settle(row, status=aside.status, last_error=str(aside))
        except PermanentDelivery as failure:
            breaker.succeeded(row.id)  # the channel answered, if only to refuse
            await self._kill(row, str(failure) or type(failure).__name__)
        except RecipientTrouble as failure:
            breaker.neutral(row.id)
            await self._retry(row, str(failure) or type(failure).__name__)
        except Exception as failure:  # RetryableDelivery, and any surprise: retry within the window
            if not isinstance(failure, RetryableDelivery):
                log.exception("outbox row %s: unexpected error from the %s sender", row.id, row.channel)
            error = str(failure) or type(failure).__name__
            was_closed = breaker.closed
            channel_down = breaker.failed(row.id, error)
            if channel_down and was_closed:
                await self._hold_for_channel(row.channel)
            await self._retry(row, error, channel_down=channel_down)
            if channel_down and not was_closed:
                await self._give_up_expired(row.channel, error)
        else:
            breaker.succeeded(row.id)
            await self._settle(row, status="delivered", delivered_at=self._clock())

    async def _hold_for_channel(self, channel: str) -> None:
        await outage.hold_for_channel(self._db, channel, self._clock())

    async def _give_up_expired(self, channel: str, error: str) -> None:
        reason = f"gave up after the retry window, channel down: {error}"
        dead = await outage.give_up_expired(self._db, channel, self._clock(), self._policy.window_s, reason)
        if dead:
            log.warning("%d outbox rows of channel %s are dead: %s", len(dead), channel, reason)
        for row in dead:
            await self._tell_dead(row)

    async def _still_ours(self, row: OutboxRow) -> bool:
        c = t.outbox.c
        stmt = select(c.id).where(c.id == row.id, c.status == "pending", c.claimed_until == row.claimed_until)
        async with one_statement(self._db) as conn:
            return (await conn.execute(stmt)).first() is not None

    async def _retry(self, row: OutboxRow, error: str, *, channel_down: bool = False) -> None:
        attempts, now = row.attempts + 1, self._clock()
        if self._policy.gives_up(row.created_at, attempts, now):
            await self._kill(row, f"gave up after {attempts} attempts: {error}")
            return
        # While the channel is down the breaker decides when it is tried again; the row waits its turn as due.
        delay = 0.0 if channel_down else self._policy.delay_s(row.attempts)
        next_at = now + timedelta(seconds=delay)
        await self._settle(row, attempts=attempts, next_attempt_at=next_at, last_error=error)

    async def _kill(self, row: OutboxRow, error: str) -> None:
        await self._settle(row, status="dead", attempts=row.attempts + 1, last_error=error)
        log.warning(
            "outbox row %s (%s %s to %s) is dead: %s", row.id, row.channel, row.kind, shown_recipient(row), error
        )
        await self._tell_dead(replace(row, attempts=row.attempts + 1, last_error=error))

    async def _tell_dead(self, row: OutboxRow) -> None:
        if self._on_dead is not None:
            try:
                await self._on_dead(row)
            except Exception:
                log.exception("on_dead failed for outbox row %s", row.id)

    async def _settle(self, row: OutboxRow, **values: Any) -> None:
        """Record the outcome and release the claim, unless the row left our hands meanwhile."""
        c = t.outbox.c
        stmt = (
            update(t.outbox)
            .where(c.id == row.id, c.status == "pending", c.claimed_until == row.claimed_until)
            .values(claimed_until=None, **values)
        )
        async with one_statement(self._db) as conn:
            await conn.execute(stmt)

    async def _release(self, rows: list[OutboxRow]) -> None:
        """Claimed rows this process will not send after all (it is stopping): free to be claimed at once."""
        for row in rows:
            await self._settle(row)
