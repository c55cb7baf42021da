"""The transactional inbox: a platform message is stored (unique per platform + message id) before it is
acknowledged, and marked processed in the same transaction as what it caused. A retry or a second
replica finds it already there; a message whose processing died is replayed from its stored payload.

Every failed or died attempt is counted on the row (in a transaction of its own, since the failed one rolled
back); after the last allowed attempt the row is parked as dead (`parked_at`) and never claimed or replayed
again, so no message loops for ever.

A row names the process that has it under way (`claimed_by`): the one that stored it, while the message waits
in its queue, runs, or waits for a retry. Each process keeps ONE heartbeat row (`inbox_holders.alive_until`),
renewed at every sweep: renewing costs one row however long the queue (renewing a lease per message rewrote
and locked every queued row, and held up the units of work that claim them). A row whose process has no live
heartbeat (it died, or was cut off from the database) is free: a sweep on any replica claims it with
FOR UPDATE SKIP LOCKED, so two replicas never take the same row, and re-queues it. The claim on
`processed_at` in the unit of work stays the final guard: a message is handled once, whoever runs it.

The group commit that stores messages on the acknowledgement path is InboxWriter (integrations/db/inbox_writer.py).
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from integrations.db import tables as t
from integrations.db.engine import HotStatement

_inbox = t.inbound_messages

_open = and_(_inbox.c.processed_at.is_(None), _inbox.c.parked_at.is_(None))  # neither handled nor dead
_FIELDS = (_inbox.c.platform, _inbox.c.message_id, _inbox.c.payload, _inbox.c.attempts)


def _key(platform: str, message_id: str) -> Any:
    return and_(_inbox.c.platform == platform, _inbox.c.message_id == message_id)


# every message's unit of work runs it: built once, run straight on asyncpg
_claim = HotStatement(
    update(_inbox)
    .where(_inbox.c.platform == bindparam("b_platform"), _inbox.c.message_id == bindparam("b_message_id"), _open)
    .values(processed_at=bindparam("b_at"))
)


async def claim(conn: AsyncConnection, platform: str, message_id: str, at: datetime) -> bool:
    """Inside the unit of work that handles the message: False if it was already processed."""
    return await _claim.execute(conn, {"b_platform": platform, "b_message_id": message_id, "b_at": at}) == 1


class InboxRepository:
    """The inbox as the unit of work sees it: claim a stored message for processing, once."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def claim(self, platform: str, message_id: str, at: datetime) -> bool:
        return await claim(self._conn, platform, message_id, at)

    async def record_failure(
        self, platform: str, message_id: str, at: datetime, *, max_attempts: int, error: str, counted: bool = False
    ) -> dict[str, Any] | None:
        """Count a failed attempt (unless its replay already counted it) and park the message once it has had
        `max_attempts`. Returns the row (with `parked`), or None when it was handled or parked meanwhile."""
        attempts = _inbox.c.attempts if counted else _inbox.c.attempts + 1
        row = (await self._conn.execute(
            update(_inbox).where(_key(platform, message_id), _open)
            .values(attempts=attempts, last_error=error[:500])
            .returning(*_FIELDS)
        )).first()
        if row is None:
            return None
        found = dict(row._mapping)
        found["parked"] = found["attempts"] >= max_attempts
        if found["parked"]:
            await self._conn.execute(update(_inbox).where(_key(platform, message_id)).values(parked_at=at))
        return found

    async def any_free(self, now: datetime) -> bool:
        """A read first, so an idle sweep writes nothing (SQLite has one writer; PostgreSQL, WAL)."""
        found = await self._conn.execute(select(_inbox.c.message_id).where(_open, _free(now)).limit(1))
        return found.first() is not None

    async def park_exhausted(self, now: datetime, max_attempts: int) -> list[dict[str, Any]]:
        """Free rows that have had their last attempt (they died with their process each time): parked, all of
        them, each by one replica only."""
        pick = select(_inbox.c.platform, _inbox.c.message_id).where(
            _open, _free(now), _inbox.c.attempts >= max_attempts
        ).with_for_update(skip_locked=True)
        rows = (await self._conn.execute(
            update(_inbox)
            .where(tuple_(_inbox.c.platform, _inbox.c.message_id).in_(pick), _open, _free(now))
            .values(parked_at=now, claimed_by=None)
            .returning(*_FIELDS)
        )).all()
        return [dict(r._mapping) for r in rows]

    async def claim_free(
        self, holder: str, now: datetime, until: datetime, *, limit: int, max_attempts: int,
        mine: Container[tuple[str, str]] = (),
    ) -> list[dict[str, Any]]:
        """Free rows, oldest first, leased to `holder` until `until`; each claim counted as an attempt before it
        starts (a message that kills its process is then parked after its last attempt too). Rows another
        replica is claiming, or a unit of work is handling, right now are skipped, not waited for. A free row
        in `mine` (under way here, its lease lapsed while the sweep was late) is only leased again."""
        await self.renew(holder, until)
        if limit <= 0:
            return []
        pick = (
            select(_inbox.c.platform, _inbox.c.message_id)
            .where(_open, _free(now), _inbox.c.attempts < max_attempts)
            .order_by(_inbox.c.received_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        free = [(p, m) for p, m in await self._conn.execute(pick)]
        for platform, ids in _by_platform(k for k in free if k in mine):
            await self._lease(platform, ids, now, holder=holder)
        found: list[Any] = []
        for platform, ids in _by_platform(k for k in free if k not in mine):
            found += await self._lease(platform, ids, now, holder=holder, count=True)
        return [dict(r._mapping) for r in sorted(found, key=lambda r: r.received_at)]

    async def _lease(self, platform: str, ids: list[str], now: datetime, *, holder: str,
                     count: bool = False) -> list[Any]:
        values: dict[str, Any] = {"claimed_by": holder}
        if count:
            values["attempts"] = _inbox.c.attempts + 1
        rows = await self._conn.execute(
            update(_inbox)
            .where(_inbox.c.platform == platform, _inbox.c.message_id.in_(ids), _open, _free(now))
            .values(**values)
            .returning(*_FIELDS, _inbox.c.received_at)
        )
        return list(rows)

    async def renew(self, holder: str, until: datetime) -> None:
        """This process lives until `until`: every row it has under way stays its own (one row written)."""
        await self._conn.execute(heartbeat(self._conn, holder, until))

    async def release(self, holder: str) -> None:
        """This process stops: what it had under way is free for a sweep at once."""
        await self._conn.execute(delete(_holders).where(_holders.c.holder == holder))

    async def strays(self, holder: str, held: Container[tuple[str, str]], known: int) -> list[tuple[str, str]]:
        """Open rows under this holder that it no longer has in hand (a message dropped without an answer, e.g.
        while the database was away): with a live heartbeat nobody else would ever take them. A count first,
        so the usual case (as many rows as in hand) reads no keys."""
        mine = and_(_open, _inbox.c.claimed_by == holder)
        count = await self._conn.scalar(select(func.count()).select_from(_inbox).where(mine))
        if not count or count <= known:
            return []
        keys = await self._conn.execute(select(_inbox.c.platform, _inbox.c.message_id).where(mine))
        return [(p, m) for p, m in keys if (p, m) not in held]

    async def free_strays(self, keys: list[tuple[str, str]], holder: str) -> None:
        """Give stray rows up, so the sweep's usual way takes them: parked if they had their last attempt,
        otherwise claimed with an attempt counted and queued again."""
        for platform, ids in _by_platform(keys):
            await self._conn.execute(
                update(_inbox)
                .where(_inbox.c.platform == platform, _inbox.c.message_id.in_(ids), _open,
                       _inbox.c.claimed_by == holder)
                .values(claimed_by=None)
            )


_holders = t.inbox_holders


def heartbeat(conn: AsyncConnection, holder: str, until: datetime) -> Any:
    """`holder` lives until `until`: its one heartbeat row, written by the writer and by the sweep."""
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    stmt = insert(_holders).values(holder=holder, alive_until=until)
    return stmt.on_conflict_do_update(index_elements=[_holders.c.holder], set_={"alive_until": stmt.excluded.alive_until})


def _free(now: datetime) -> Any:
    """No live process has the row under way: never leased, or its process's heartbeat has lapsed."""
    alive = select(_holders.c.holder).where(_holders.c.alive_until >= now)
    return or_(_inbox.c.claimed_by.is_(None), _inbox.c.claimed_by.not_in(alive))


def _by_platform(keys: Iterable[tuple[str, str]], chunk: int = 500) -> list[tuple[str, list[str]]]:
    """Keys grouped per platform in chunks: `message_id IN (…)` runs on SQLite too, unlike a tuple IN list."""
    grouped: dict[str, list[str]] = {}
    for platform, message_id in keys:
        grouped.setdefault(platform, []).append(message_id)
    return [(p, ids[i:i + chunk]) for p, ids in grouped.items() for i in range(0, len(ids), chunk)]


def connection_lost(err: BaseException) -> bool:
    """A lost or refused database connection anywhere in the error's chain (not a fault of the message)."""
    seen: BaseException | None = err
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, (OperationalError, InterfaceError, DisconnectionError, ConnectionError, OSError,
                             TimeoutError)):
            return True
        name = type(seen).__name__
        if type(seen).__module__.startswith("asyncpg") and any(w in name for w in ("Connection", "Shutdown")):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
