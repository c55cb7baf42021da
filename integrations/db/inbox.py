"""The transactional inbox: a platform message is stored (unique per platform + message id) before it is
acknowledged, and marked processed in the same transaction as what it caused. A retry or a second
replica finds it already there; a message whose processing died is replayed from its stored payload.

Every failed or died attempt is counted on the row (in a transaction of its own, since the failed one rolled
back); after the last allowed attempt the row is parked as dead (`parked_at`) and never claimed or replayed
again, so no message loops for ever.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from integrations.db import tables as t
from integrations.db.engine import Database

_inbox = t.inbound_messages
log = logging.getLogger(__name__)


class InboxWriter:
    """Group commit for the acknowledgement path: every message that arrives while the previous batch is
    being written goes into the next one, so a burst costs one INSERT … ON CONFLICT DO NOTHING RETURNING
    and one commit per batch instead of one transaction per message. The first of two copies wins.
    """

    def __init__(self, db: Database, max_batch: int = 500) -> None:
        self.db = db
        self.max_batch = max_batch
        self._pending: list[tuple[dict[str, Any], asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None
        # built once and run as an executemany (SQLAlchemy batches it into one INSERT … VALUES …, cached)
        self._insert = (
            (sqlite_insert if db.is_sqlite else pg_insert)(_inbox)
            .on_conflict_do_nothing(index_elements=["platform", "message_id"])
            .returning(_inbox.c.platform, _inbox.c.message_id)
        )

    async def record(self, platform: str, message_id: str, payload: dict[str, Any], at: datetime) -> bool:
        """Store a new message; False when it was seen before (a retry, or another replica got it)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        row = {"platform": platform, "message_id": message_id, "received_at": at, "payload": payload}
        self._pending.append((row, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            try:
                stored = await self._write([row for row, _ in batch])
            except Exception:
                log.warning("inbox batch of %d failed; writing its rows one by one", len(batch))
                await self._write_each(batch)
                continue
            _settle(batch, stored)

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
        async with self.db.engine.begin() as conn:
            return {(p, m) for p, m in await conn.execute(self._insert, unique)}


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


async def claim(conn: AsyncConnection, platform: str, message_id: str, at: datetime) -> bool:
    """Inside the unit of work that handles the message: False if it was already processed."""
    result = await conn.execute(
        update(_inbox)
        .where(_key(platform, message_id), _open)
        .values(processed_at=at)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


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

    async def park_exhausted(self, now: datetime, older_than_s: float, max_attempts: int) -> list[dict[str, Any]]:
        """Stale messages that have had their last attempt (they died with the process each time): parked."""
        rows = (await self._conn.execute(
            update(_inbox)
            .where(_open, _inbox.c.attempts >= max_attempts,
                   _inbox.c.received_at < now - timedelta(seconds=older_than_s))
            .values(parked_at=now)
            .returning(*_FIELDS)
        )).all()
        return [dict(r._mapping) for r in rows]

    async def start_replay(self, now: datetime, older_than_s: float, limit: int = 100) -> list[dict[str, Any]]:
        """Stale messages to process again, each replay counted as an attempt before it starts (a message
        that kills the process is then parked after its last attempt too)."""
        rows = (await self._conn.execute(
            select(*_FIELDS)
            .where(_open, _inbox.c.received_at < now - timedelta(seconds=older_than_s))
            .order_by(_inbox.c.received_at)
            .limit(limit)
        )).all()
        found = [dict(r._mapping) for r in rows]
        if found:
            await self._conn.execute(
                update(_inbox)
                .where(_inbox.c.platform == bindparam("p"), _inbox.c.message_id == bindparam("m"))
                .values(attempts=_inbox.c.attempts + 1),
                [{"p": r["platform"], "m": r["message_id"]} for r in found],
            )
        return found
