"""Rows set aside because their channel (or their store's part of it) had no settings: status "unconfigured",
visible on /metrics. Once the settings are there, `revive_set_aside` makes them due again — the one mechanism
behind texts, K3 bookings, labels and channel shipments (each decides which rows and how old)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, update

from integrations.db import tables as t
from integrations.db.engine import Database

UNCONFIGURED, SKIPPED = "unconfigured", "skipped"


async def revive_set_aside(
    db: Database, channel: str, now: datetime, *, where: Sequence[ColumnElement[bool]] = (),
    max_age: timedelta | None = None, too_old: str | None = None,
) -> tuple[int, int]:
    """The channel's unconfigured rows (and `where`) are due now; with `max_age` only those younger than it, and
    with `too_old` the older ones are skipped with that reason (else they stay aside). Returns (revived, skipped)."""
    c = t.outbox.c
    waiting = (c.channel == channel, c.status == UNCONFIGURED, *where)
    cutoff = now - max_age if max_age is not None else None
    young = (c.created_at >= cutoff,) if cutoff is not None else ()
    async with db.engine.begin() as conn:
        revived: Any = await conn.execute(update(t.outbox).where(*waiting, *young).values(
            status="pending", next_attempt_at=now, claimed_until=None, last_error=""))
        skipped: Any = None
        if cutoff is not None and too_old is not None:
            skipped = await conn.execute(update(t.outbox).where(*waiting, c.created_at < cutoff).values(
                status=SKIPPED, claimed_until=None, last_error=too_old))
    return int(revived.rowcount or 0), int(skipped.rowcount or 0) if skipped is not None else 0
