"""What a channel's breaker does to the outbox when the channel goes down, and while it stays down."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.delivery.rows import DEFERRED_PREFIX, OutboxRow


async def hold_for_channel(db: Database, channel: str, now: datetime) -> None:
    """The channel just went down: its rows backing off are due now, so that when it comes back they go out with
    the rest, oldest first, rather than after younger rows to the same person."""
    c = t.outbox.c
    stmt = (
        update(t.outbox)
        .where(c.channel == channel, c.status == "pending", c.attempts > 0, c.next_attempt_at > now,
               ~c.last_error.startswith(DEFERRED_PREFIX))
        .values(next_attempt_at=now)
    )
    async with db.engine.begin() as conn:
        await conn.execute(stmt)


async def give_up_expired(db: Database, channel: str, now: datetime, window_s: float, reason: str) -> list[OutboxRow]:
    """The channel is still down: its rows whose retry window has passed are dead, all at once (one by one, at a
    probe a minute, a long outage would end in a trickle of warnings). Returns them, as dead."""
    c = t.outbox.c
    stmt = (
        select(t.outbox)
        .where(c.channel == channel, c.status == "pending", c.created_at <= now - timedelta(seconds=window_s),
               or_(c.claimed_until.is_(None), c.claimed_until < now))
        .order_by(c.id)
    )
    if not db.is_sqlite:
        stmt = stmt.with_for_update(skip_locked=True)
    async with db.engine.begin() as conn:
        dead = [OutboxRow.from_mapping(r._mapping) for r in await conn.execute(stmt)]
        if dead:
            ids = [row.id for row in dead]
            await conn.execute(update(t.outbox).where(c.id.in_(ids)).values(status="dead", last_error=reason))
    return [replace(row, last_error=reason) for row in dead]
