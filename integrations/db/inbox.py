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
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Container, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from integrations.db import tables as t
from integrations.db.engine import Database, HotStatement, autocommit_driver, driver_error

_inbox = t.inbound_messages
log = logging.getLogger(__name__)


class InboxWriter:
    """Group commit for the acknowledgement path: every message that arrives while the previous batch is
    being written goes into the next one, so a burst costs one INSERT … ON CONFLICT DO NOTHING RETURNING
    per batch instead of one transaction per message (on PostgreSQL one statement in autocommit, one round
    trip). The first of two copies wins.
    """

    def __init__(self, db: Database, max_batch: int = 500, *, holder: str | None = None,
                 lease_s: float = 0.0, writers: int | None = None, spill: int = 32) -> None:
        """One batch is written at a time while the rest wait for it: the longer a write takes, the more the next
        batch carries, and each statement's cost is shared by more messages. On PostgreSQL, once `spill` messages
        wait, up to `writers` batches are written at once (PostgreSQL flushes commits that arrive together once),
        so a slow disk's flush does not hold a whole burst. SQLite has one writer at a time anyway."""
        self.db = db
        self.max_batch = max_batch
        self.holder = holder  # a stored row is leased to the process that queues it, so no sweep takes it meanwhile
        self.lease_s = lease_s
        self.alive_until: datetime | None = None  # this holder's heartbeat as last written (here or by the sweep)
        self._pending: list[tuple[dict[str, Any], asyncio.Future[bool]]] = []
        self._flushers: set[asyncio.Task[None]] = set()  # running; each takes itself out as it ends
        self.writers = 1 if db.is_sqlite else writers or 3
        self.spill = spill
        self._kept: AsyncConnection | None = None  # PostgreSQL: the last batch's connection, for the next one
        self._closed = False
        if not db.is_sqlite:
            db.keeps_connection(self.close)
        # SQLite's: built once and run as an executemany (SQLAlchemy batches it into one INSERT … VALUES …)
        self._insert = (
            sqlite_insert(_inbox)
            .on_conflict_do_nothing(index_elements=["platform", "message_id"])
            .returning(_inbox.c.platform, _inbox.c.message_id)
        )

    async def record(self, platform: str, message_id: str, payload: dict[str, Any], at: datetime) -> bool:
        """Store a new message; False when it was seen before (a retry, or another replica got it)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        row = {"platform": platform, "message_id": message_id, "received_at": at, "payload": payload,
               "claimed_by": self.holder}
        self._pending.append((row, future))
        if not self._flushers or (len(self._flushers) < self.writers and len(self._pending) >= self.spill):
            self._flushers.add(asyncio.create_task(self._flush()))
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                try:
                    stored = await self._write([row for row, _ in batch])
                except Exception:
                    log.warning("inbox batch of %d failed; writing its rows one by one", len(batch))
                    await self._write_each(batch)
                    continue
                _settle(batch, stored)
        finally:  # at once, not in a done callback: a message recorded in between must start the next flusher
            self._flushers.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def _write_each(self, batch: list[tuple[dict[str, Any], asyncio.Future[bool]]]) -> None:
        """One bad row must not fail the others of its burst: each is written alone, and only the row that
        still fails gets the error (its caller answers 5xx and the platform retries that one)."""
        for row, future in batch:
            if future.done():
                continue
            try:
                stored = await self._write([row])
            except Exception as err:
                future.set_exception(err)
                continue
            _settle([(row, future)], stored)

    async def _write(self, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
        unique = list({(r["platform"], r["message_id"]): r for r in reversed(rows)}.values())
        if not self.db.is_sqlite:
            return await self._write_pg(unique)
        async with self.db.engine.begin() as conn:  # one writer at a time: a copy under way waits anyway
            await self._keep_alive(conn, max(r["received_at"] for r in unique))
            return {(p, m) for p, m in await conn.execute(self._insert, unique)}

    async def _write_pg(self, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
        """One statement in autocommit: one round trip for the whole batch, no BEGIN or COMMIT. The heartbeat,
        when due, is written first, so no row is ever stored under a holder that looks dead.

        The connection is kept for the next batch (taking one from the pool and giving it back cost half as
        much as the statement); one that failed goes back, or is dropped when the server cut it."""
        latest = max(r["received_at"] for r in rows)
        conn, self._kept = self._kept or await self.db.engine.connect(), None
        kept = False
        try:
            if self.holder and not self._alive_at(latest):
                async with conn.begin():
                    await self._keep_alive(conn, latest)
            driver = await autocommit_driver(conn)
            columns = ([r["platform"] for r in rows], [r["message_id"] for r in rows],
                       [r["received_at"] for r in rows], [json.dumps(r["payload"]) for r in rows])
            try:
                stored = await driver.fetch(_RECORD, *columns, self.holder)
            except Exception as err:
                error = driver_error(conn, err, _RECORD)
                if driver.is_closed():  # not back into the pool: SQLAlchemy did not see it fail
                    await conn.invalidate()
                raise error from err
            if self._kept is None and not self._closed:
                self._kept, kept = conn, True
        finally:
            if not kept:
                await conn.close()
        return {(r[0], r[1]) for r in stored}

    async def close(self) -> None:
        """Give back the kept connection (the process is stopping); a batch still under way gives back its own."""
        self._closed = True
        kept, self._kept = self._kept, None
        if kept is not None:
            await kept.close()

    def _alive_at(self, at: datetime) -> bool:
        return self.alive_until is not None and self.alive_until - at > timedelta(seconds=self.lease_s / 2)

    async def _keep_alive(self, conn: AsyncConnection, at: datetime) -> None:
        """Rows stored under this holder are not free while it lives: its heartbeat is written with the first
        rows (before any sweep ran) and again only when it would lapse soon, not with every batch."""
        if not self.holder or self._alive_at(at):
            return
        until = at + timedelta(seconds=self.lease_s)
        await conn.execute(_heartbeat(conn, self.holder, until))
        self.alive_until = until


# A copy of a message whose unit of work is running right now (a platform retry, perhaps through another
# replica) is filtered out by the statement's own snapshot (NOT EXISTS). Left to ON CONFLICT alone, the insert
# would wait for that unit of work to end, and hold the acknowledgements of its whole batch meanwhile.
# OFFSET 0 keeps the NOT EXISTS a probe of the primary key per row: as a join, the cached generic plan of a
# table whose statistics lag behind its growth (a new inbox, a burst before autovacuum's next analyze) is a hash
# anti join over a sequential scan of the whole inbox, on every batch.
_RECORD = """
INSERT INTO inbound_messages (platform, message_id, received_at, payload, claimed_by)
SELECT v.platform, v.message_id, v.received_at, v.payload::json, $5::text
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[]) AS v(platform, message_id, received_at, payload)
WHERE NOT EXISTS (
    SELECT 1 FROM inbound_messages i WHERE i.platform = v.platform AND i.message_id = v.message_id OFFSET 0
)
ON CONFLICT (platform, message_id) DO NOTHING
RETURNING platform, message_id
"""


_open = and_(_inbox.c.processed_at.is_(None), _inbox.c.parked_at.is_(None))  # neither handled nor dead
_FIELDS = (_inbox.c.platform, _inbox.c.message_id, _inbox.c.payload, _inbox.c.attempts)


def _key(platform: str, message_id: str) -> Any:
    return and_(_inbox.c.platform == platform, _inbox.c.message_id == message_id)


def _settle(batch: list[tuple[dict[str, Any], asyncio.Future[bool]]], stored: set[tuple[str, str]]) -> None:
    for row, future in batch:
        key = (row["platform"], row["message_id"])
        if not future.done():
            future.set_result(key in stored)
        stored.discard(key)  # a second copy in the same batch is a duplicate


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
        await self._conn.execute(_heartbeat(self._conn, holder, until))

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


def _heartbeat(conn: AsyncConnection, holder: str, until: datetime) -> Any:
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
