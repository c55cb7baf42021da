"""The event log of the order event bus: events stored with the change that raised them, numbered after
commit, and each subscriber's cursor in that numbering.

Why a second number: row ids are handed out when a transaction inserts, not when it commits, so a cursor on
ids would step over an event whose transaction was still open (id 10 commits after id 11 was delivered, and
is never sent). `sequence` numbers committed rows only, one sequencer at a time (a transaction-level
advisory lock on PostgreSQL; SQLite's write lock, taken before the reads), in id order. Two events of one order come from
transactions that followed each other on the order's row (its version check), so the later one is inserted
after the earlier committed: it has the higher id, is never numbered before it, and is delivered after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from domain.event_wire import WireEvent
from integrations.db import tables as t
from integrations.db.engine import Database

SEQUENCER_LOCK = 0x6F726465  # pg_advisory_xact_lock key of the sequencer ("orde")
c = t.events.c
k = t.event_cursors.c
EVENT_KEYS = ("type", "order_no", "at", "actor", "via", "data")


@dataclass(frozen=True)
class PublishedEvent:
    """An event as subscribers get it: `id` is its place in the stream (seq), stable across re-sends."""

    id: int
    type: str
    order_no: str | None
    at: datetime
    actor: str
    via: str
    data: dict[str, Any]

    def envelope(self) -> dict[str, Any]:
        at = self.at.isoformat().replace("+00:00", "Z")
        return {"id": self.id, "type": self.type, "order_no": self.order_no, "at": at, "actor": self.actor,
                "via": self.via, "data": self.data}


@dataclass(frozen=True)
class Cursor:
    subscriber: str
    position: int
    holder: str | None
    held_until: datetime | None
    delivered_at: datetime | None
    failing_since: datetime | None
    last_error: str


def event_rows(events: Sequence[WireEvent], *, at: datetime, actor: str, via: str) -> list[dict[str, Any]]:
    """Rows for `events`, acted by `actor` through `via` unless the event names its own (a rule's)."""
    return [{"type": w.type, "order_no": w.order_no, "at": at, "actor": (w.actor or actor)[:64],
             "via": (w.via or via)[:16], "data": w.data} for w in events]


class EventStore:
    """What the publisher and `orderbot events` do with the log, each step in its own short transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def sequence(self, limit: int = 1000) -> int:
        """Number the committed, unnumbered events in id order; how many were numbered."""
        async with self._db.engine.begin() as conn:
            if self._db.is_sqlite:
                # SQLite's driver begins the transaction only at the first write, so the reads below would
                # each see the latest commit on their own: a second sequencer could read the ids before the
                # first committed and the top after, and number the same events again. Writing first takes
                # the one write lock for the whole transaction.
                await conn.execute(update(t.events).where(c.id == -1).values(seq=c.seq))
            else:
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEQUENCER_LOCK})
            ids = list((await conn.scalars(select(c.id).where(c.seq.is_(None)).order_by(c.id).limit(limit))).all())
            if not ids:
                return 0
            top = int((await conn.scalar(select(func.coalesce(func.max(c.seq), 0)))) or 0)
            await conn.execute(
                update(t.events).where(c.id == bindparam("row_id")).values(seq=bindparam("new_seq")),
                [{"row_id": row_id, "new_seq": top + n} for n, row_id in enumerate(ids, start=1)],
            )
            return len(ids)

    async def after(self, position: int, limit: int) -> list[PublishedEvent]:
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(
                select(c.seq, c.type, c.order_no, c.at, c.actor, c.via, c.data)
                .where(c.seq > position).order_by(c.seq).limit(limit)
            )
            return [PublishedEvent(int(r.seq), r.type, r.order_no, r.at, r.actor, r.via, dict(r.data)) for r in rows]

    async def last_seq(self) -> int:
        async with self._db.engine.connect() as conn:
            return int((await conn.scalar(select(func.coalesce(func.max(c.seq), 0)))) or 0)

    async def unsequenced(self) -> int:
        async with self._db.engine.connect() as conn:
            return int((await conn.scalar(select(func.count()).where(c.seq.is_(None)))) or 0)

    async def ensure_cursor(self, subscriber: str) -> None:
        """A new subscriber starts at the beginning of the log: it gets every event ever stored."""
        async with self._db.engine.connect() as conn:
            found = await conn.scalar(select(k.subscriber).where(k.subscriber == subscriber))
        if found is not None:
            return
        try:
            async with self._db.engine.begin() as conn:
                await conn.execute(insert(t.event_cursors).values(subscriber=subscriber, position=0, last_error=""))
        except IntegrityError:  # another replica made it first
            pass

    async def claim(self, subscriber: str, holder: str, now: datetime, until: datetime) -> int | None:
        """Hold the subscriber's cursor until `until` (or keep holding it); its position, or None: another
        replica holds it."""
        stmt = (
            update(t.event_cursors)
            .where(k.subscriber == subscriber,
                   or_(k.holder.is_(None), k.holder == holder, k.held_until.is_(None), k.held_until < now))
            .values(holder=holder, held_until=until)
            .returning(k.position)
        )
        async with self._db.engine.begin() as conn:
            position = (await conn.execute(stmt)).scalar_one_or_none()
        return None if position is None else int(position)

    async def advance(self, subscriber: str, holder: str, *, start: int, to: int, now: datetime,
                      until: datetime) -> bool:
        """Move the cursor from `start` to `to` if it is still ours and still at `start`; False: it moved
        (a replay rewound it) or another replica took it — read it again."""
        stmt = (
            update(t.event_cursors)
            .where(k.subscriber == subscriber, k.holder == holder, k.position == start)
            .values(position=to, held_until=until, delivered_at=now, failing_since=None, last_error="")
        )
        async with self._db.engine.begin() as conn:
            return bool((await conn.execute(stmt)).rowcount)

    async def failed(self, subscriber: str, holder: str, *, error: str, now: datetime) -> None:
        stmt = (
            update(t.event_cursors)
            .where(k.subscriber == subscriber, k.holder == holder)
            .values(last_error=error[:500], failing_since=func.coalesce(k.failing_since, now))
        )
        async with self._db.engine.begin() as conn:
            await conn.execute(stmt)

    async def release(self, subscriber: str, holder: str) -> None:
        stmt = update(t.event_cursors).where(k.subscriber == subscriber, k.holder == holder).values(
            holder=None, held_until=None)
        async with self._db.engine.begin() as conn:
            await conn.execute(stmt)

    async def rewind(self, subscriber: str, *, next_id: int) -> int:
        """Deliver again from event `next_id` on (the running publisher notices at its next step); the old
        position."""
        await self.ensure_cursor(subscriber)
        async with self._db.engine.begin() as conn:
            old = await conn.scalar(select(k.position).where(k.subscriber == subscriber).with_for_update())
            await conn.execute(update(t.event_cursors).where(k.subscriber == subscriber).values(
                position=max(0, next_id - 1)))
        return int(old or 0)

    async def cursors(self) -> list[Cursor]:
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(select(t.event_cursors).order_by(k.subscriber))
            return [Cursor(**dict(r._mapping)) for r in rows]
