"""The outbox dispatcher: claims committed outbox rows, hands them to a sender per channel, records the outcome.

Claiming and sending are separate steps: rows are claimed (claimed_until = now + claim_s) in a short
transaction, then sent with no transaction open. A process that dies mid-send leaves its rows claimed;
once the claim expires another pass sends them again, so delivery is at-least-once (WeCom's duplicate
check hides the repeat from the person). On PostgreSQL the claim uses FOR UPDATE SKIP LOCKED, so any
number of replicas can dispatch; on SQLite one process dispatches.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from domain.chat import Reply
from domain.clock import utcnow
from domain.outbox import ChatPush
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork

log = logging.getLogger(__name__)

DEFERRED_PREFIX = "deferred: "  # last_error of a row put off by a rate limit (not a failure)
ADMIN_ROLE = "manager"
_PLAIN_COLUMNS = ("id", "channel", "kind", "recipient", "payload", "attempts", "dedup_key", "last_error")


@dataclass(frozen=True)
class OutboxRow:
    id: int
    channel: str
    kind: str
    recipient: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime
    dedup_key: str | None = None
    claimed_until: datetime | None = None  # the claim this pass holds; also tells one pass's rows apart
    last_error: str = ""

    @classmethod
    def from_mapping(cls, m: Mapping[Any, Any]) -> OutboxRow:
        plain = {name: m[name] for name in _PLAIN_COLUMNS}
        return cls(**plain, created_at=m["created_at"], claimed_until=m["claimed_until"])

    @property
    def deferred(self) -> bool:
        return self.last_error.startswith(DEFERRED_PREFIX)


class RetryableDelivery(Exception):
    """The send may succeed later: try again after a back-off."""


class PermanentDelivery(Exception):
    """The send will never succeed: the row is dead."""


class DeferDelivery(Exception):
    """Not sent on purpose (a rate limit): try again at `until`, without counting an attempt."""

    def __init__(self, until: datetime, reason: str) -> None:
        super().__init__(reason)
        self.until = until


class LostClaim(Exception):
    """The row left our hands before it was sent (merged into a digest, or the claim lapsed): skip it."""


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
        max_attempts: int = 8,
        base_backoff_s: float = 1.0,
        max_backoff_s: float = 300,
        claim_s: float = 60,
        clock: Callable[[], datetime] = utcnow,
        on_dead: OnDead | None = None,
        max_in_flight: int = 16,
        claim_margin_s: float = 5.0,
    ) -> None:
        self._db = db
        self._senders = dict(senders)
        self._batch = batch
        self._max_attempts = max_attempts
        self._base_backoff_s = base_backoff_s
        self._max_backoff_s = max_backoff_s
        self._claim_s = claim_s
        self._clock = clock
        self._on_dead = on_dead
        self._max_in_flight = max(1, max_in_flight)
        self._claim_margin = timedelta(seconds=claim_margin_s)  # a claim this close to lapsing is re-checked
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """Something was committed: start the next pass now instead of at the end of the idle wait."""
        self._wake.set()

    async def run_forever(self, stop: asyncio.Event, idle_s: float = 0.5) -> None:
        while not stop.is_set():
            self._wake.clear()
            try:
                handled = await self.run_once()
            except Exception:  # a database hiccup must not end delivery; the next pass retries
                log.exception("outbox pass failed")
                handled = 0
            if handled < self._batch:
                await _first_of(stop, self._wake, wait_s=idle_s)

    async def run_once(self) -> int:
        """Claim one batch of due rows and deliver them; returns how many rows were claimed."""
        rows = await self._claim(self._clock())
        groups: dict[str, list[OutboxRow]] = {}
        for row in rows:  # id order, so each recipient's rows stay in order
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

    async def _claim(self, now: datetime) -> list[OutboxRow]:
        c = t.outbox.c
        stmt = (
            select(t.outbox)
            .where(
                c.status == "pending",
                c.channel.in_(list(self._senders)),
                c.next_attempt_at <= now,
                or_(c.claimed_until.is_(None), c.claimed_until < now),
            )
            .order_by(c.id)
            .limit(self._batch)
        )
        if not self._db.is_sqlite:
            stmt = stmt.with_for_update(skip_locked=True)
        # A random sub-second part makes each pass's claim value its own (see OutboxRow.claimed_until).
        claim = now + timedelta(seconds=self._claim_s, microseconds=random.randrange(1, 1_000_000))
        async with self._db.engine.begin() as conn:
            found = [OutboxRow.from_mapping(r._mapping) for r in await conn.execute(stmt)]
            if found:
                ids = [row.id for row in found]
                await conn.execute(update(t.outbox).where(c.id.in_(ids)).values(claimed_until=claim))
        return [replace(row, claimed_until=claim) for row in found]

    async def _deliver(self, row: OutboxRow) -> None:
        lapsing = row.claimed_until is None or self._clock() >= row.claimed_until - self._claim_margin
        if lapsing and not await self._still_ours(row):
            return  # the claim lapsed and someone else took the row (or merged it into a digest)
        try:
            await self._senders[row.channel].deliver(row)
        except LostClaim:
            log.debug("outbox row %s left our hands before it was sent", row.id)
        except DeferDelivery as deferral:
            await self._settle(
                row, next_attempt_at=deferral.until, last_error=DEFERRED_PREFIX + str(deferral)
            )
        except PermanentDelivery as failure:
            await self._kill(row, str(failure) or type(failure).__name__)
        except Exception as failure:  # RetryableDelivery, and any surprise: retry, up to max_attempts
            if not isinstance(failure, RetryableDelivery):
                log.exception("outbox row %s: unexpected error from the %s sender", row.id, row.channel)
            await self._retry(row, str(failure) or type(failure).__name__)
        else:
            now = self._clock()
            await self._settle(row, status="delivered", delivered_at=now)

    async def _still_ours(self, row: OutboxRow) -> bool:
        c = t.outbox.c
        stmt = select(c.id).where(c.id == row.id, c.status == "pending", c.claimed_until == row.claimed_until)
        async with self._db.engine.connect() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def _retry(self, row: OutboxRow, error: str) -> None:
        attempts = row.attempts + 1
        if attempts >= self._max_attempts:
            await self._kill(row, f"gave up after {attempts} attempts: {error}")
            return
        delay = min(self._max_backoff_s, self._base_backoff_s * 2**row.attempts)
        delay *= 1 + random.uniform(0, 0.1)  # spread replicas' retries after a shared outage
        next_at = self._clock() + timedelta(seconds=delay)
        await self._settle(row, attempts=attempts, next_attempt_at=next_at, last_error=error)

    async def _kill(self, row: OutboxRow, error: str) -> None:
        await self._settle(row, status="dead", attempts=row.attempts + 1, last_error=error)
        log.warning(
            "outbox row %s (%s %s to %s) is dead: %s", row.id, row.channel, row.kind, row.recipient, error
        )
        if self._on_dead is not None:
            try:
                await self._on_dead(replace(row, attempts=row.attempts + 1, last_error=error))
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
        async with self._db.engine.begin() as conn:
            await conn.execute(stmt)


async def tell_admins_about_dead_row(db: Database, row: OutboxRow, *, at: datetime | None = None) -> None:
    """Enqueue one chat text per manager about a row that will never be delivered (once per row)."""
    if (row.dedup_key or "").startswith("dead:"):
        return  # a warning about a dead row died itself: say nothing, or this never ends
    text = (
        f"外发消息投递失败，已停止重试：#{row.id}（{row.channel}/{row.kind} → {row.recipient}，"
        f"尝试 {row.attempts} 次）。原因：{row.last_error}"
    )
    now = at or utcnow()
    async with UnitOfWork(db) as uow:
        managers = await uow.users.list(role=ADMIN_ROLE)
        keys = {m.userid: f"dead:{row.id}:{m.userid}" for m in managers}
        told = await _existing_dedup_keys(uow, list(keys.values()))
        for userid, key in keys.items():
            if key not in told:
                await uow.send(ChatPush(userid, Reply(text), key), at=now)
        try:
            await uow.commit()
        except IntegrityError:  # another replica told them first
            log.info("managers were already told about dead outbox row %s", row.id)


async def _existing_dedup_keys(uow: UnitOfWork, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    found = await uow.session.execute(select(t.outbox.c.dedup_key).where(t.outbox.c.dedup_key.in_(keys)))
    return {key for (key,) in found}


async def _first_of(*events: asyncio.Event, wait_s: float) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
