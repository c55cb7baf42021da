"""Which replica runs the scheduled jobs: the one holding a PostgreSQL session-level advisory lock.

The lock lives on a connection of its own, opened by the holder and kept open while it holds: the server
releases it the moment that session ends (the process is killed, the connection is cut), so there is no
lease to renew and nothing for a late tick to get wrong. Followers try to take it every `retry_s`. The
holder asks the server before each tick whether the lock is still its own, so a holder whose connection was
cut stops running jobs at once. The session sets TCP keepalives, so a holder whose host vanishes without
closing the connection loses the lock within about half a minute.

SQLite is one process serving one store: that process is always the leader.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)
APPLICATION_PREFIX = "orderbot-jobs:"  # pg_stat_activity.application_name of a lock connection
# The server notices a vanished holder (no FIN) after idle + interval × count seconds and frees the lock.
KEEPALIVES = {"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5", "tcp_keepalives_count": "3"}
_LOST = (DBAPIError, SQLAlchemyError, OSError, asyncio.TimeoutError, ConnectionError)

_TRY = text("SELECT pg_try_advisory_lock(:key)")
_UNLOCK = text("SELECT pg_advisory_unlock(:key)")
# Ours if this very session holds it: a pooler that swapped the session under us reads as lost, not held.
_HELD = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()"
    " AND classid = CAST(:hi AS oid) AND objid = CAST(:lo AS oid) AND objsubid = 1"
)


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for `name` (pg_try_advisory_lock takes a bigint)."""
    return int.from_bytes(hashlib.sha256(f"orderbot:{name}".encode()).digest()[:8], "big", signed=True)


def lock_parts(key: int) -> tuple[int, int]:
    """(classid, objid) under which pg_locks shows a bigint advisory lock."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


class Leader(Protocol):
    holder: str

    async def holds(self) -> bool:
        """Asked before each tick: True only while this replica is the leader."""

    async def run(self) -> None:
        """Until cancelled: keep the lock (holder) or try for it every few seconds (follower)."""

    async def release(self) -> None:
        """At shutdown: give the lock up at once, so a follower need not wait for anything."""


class SingleProcess:
    """SQLite: the one process runs the jobs."""

    def __init__(self, holder: str) -> None:
        self.holder = holder

    async def holds(self) -> bool:
        return True

    async def run(self) -> None:
        await asyncio.Event().wait()

    async def release(self) -> None:
        return None


class AdvisoryLock:
    """PostgreSQL: the session-level advisory lock `name`, held on a connection outside the pool."""

    def __init__(self, url: str, name: str, holder: str, *, retry_s: float = 5.0, check_timeout_s: float = 5.0) -> None:
        self.name, self.holder, self.key = name, holder, lock_key(name)
        self.retry_s, self.check_timeout_s = retry_s, check_timeout_s
        self._conn: AsyncConnection | None = None
        self._use = asyncio.Lock()  # one statement at a time on the lock connection
        self._failing = False  # the database was unreachable last time: log the next failure at DEBUG only
        connect_args: dict[str, Any] = {"timeout": check_timeout_s}
        if url.startswith("postgresql+asyncpg"):
            connect_args["server_settings"] = {"application_name": (APPLICATION_PREFIX + holder)[:63], **KEEPALIVES}
        self._engine: AsyncEngine = create_async_engine(
            url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args=connect_args
        )

    async def holds(self) -> bool:
        async with self._use:
            return await self._still_held()

    async def try_acquire(self) -> bool:
        """Holder: confirm the lock is still ours. Follower: one pg_try_advisory_lock on a fresh connection."""
        async with self._use:
            if self._conn is not None:
                return await self._still_held()
            try:
                conn = await asyncio.wait_for(self._engine.connect(), self.check_timeout_s)
            except _LOST as err:
                self._unreachable(err)
                return False
            try:
                got = bool((await asyncio.wait_for(conn.execute(_TRY, {"key": self.key}), self.check_timeout_s))
                           .scalar())
            except _LOST as err:
                await _drop(conn)
                self._unreachable(err)
                return False
            self._failing = False
            if not got:
                await conn.close()
                return False
            self._conn = conn
            log.info("job leader: %s holds the jobs lock %s; scheduled jobs run here", self.holder, self.name)
            return True

    async def run(self) -> None:
        while True:
            await self.try_acquire()
            await asyncio.sleep(self.retry_s)

    async def release(self) -> None:
        async with self._use:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    await asyncio.wait_for(conn.execute(_UNLOCK, {"key": self.key}), self.check_timeout_s)
                    await conn.close()
                except _LOST:
                    await _drop(conn)  # the session ends with the socket: the server frees the lock anyway
                log.info("job leader: %s released the jobs lock %s", self.holder, self.name)
            await self._engine.dispose()

    async def _still_held(self) -> bool:
        conn = self._conn
        if conn is None:
            return False
        hi, lo = lock_parts(self.key)
        try:
            held = (await asyncio.wait_for(conn.execute(_HELD, {"hi": hi, "lo": lo}), self.check_timeout_s)).scalar()
        except _LOST as err:
            held, reason = 0, f"{type(err).__name__}"
        else:
            reason = "the session no longer holds it"
        if held:
            return True
        self._conn = None
        await _drop(conn)
        log.warning("job leader: %s lost the jobs lock %s (%s); jobs stop here until it is won again",
                    self.holder, self.name, reason)
        return False

    def _unreachable(self, err: BaseException) -> None:
        level = logging.DEBUG if self._failing else logging.WARNING
        log.log(level, "job leader: %s cannot reach the database to try for the jobs lock: %s",
                self.holder, type(err).__name__)
        self._failing = True


async def _drop(conn: AsyncConnection) -> None:
    """Throw a broken connection away without waiting on it."""
    try:
        await conn.invalidate()
        await conn.close()
    except _LOST:
        pass
