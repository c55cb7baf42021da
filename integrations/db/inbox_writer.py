"""The inbox's group commit on the acknowledgement path: each platform message stored before it is acknowledged,
a burst in one statement (the inbox itself: integrations/db/inbox.py)."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from integrations.db import tables as t
from integrations.db.engine import Database, autocommit_driver, driver_error
from integrations.db.inbox import heartbeat

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
        await conn.execute(heartbeat(conn, self.holder, until))
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


def _settle(batch: list[tuple[dict[str, Any], asyncio.Future[bool]]], stored: set[tuple[str, str]]) -> None:
    for row, future in batch:
        key = (row["platform"], row["message_id"])
        if not future.done():
            future.set_result(key in stored)
        stored.discard(key)  # a second copy in the same batch is a duplicate
