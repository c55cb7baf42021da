"""Labels set aside because their store had no printer: once the store has one, the recent ones print."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import update

from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.printing.sender import CHANNEL, UNCONFIGURED

log = logging.getLogger(__name__)
TOO_OLD = "skipped: older than {hours:g} h when the store's printer was set up"


async def revive_unconfigured(db: Database, stores: Iterable[str], now: datetime, max_age_hours: float) -> tuple[int, int]:
    """Unconfigured labels of stores that now have a printer: due now when younger than the limit, else skipped
    (a label that old was surely handled at the bench by hand). Returns (revived, skipped)."""
    stores = sorted(stores)
    if not stores:
        return 0, 0
    c = t.outbox.c
    waiting = (c.channel == CHANNEL, c.status == UNCONFIGURED, c.recipient.in_(stores))
    cutoff = now - timedelta(hours=max_age_hours)
    async with db.engine.begin() as conn:
        revived = await conn.execute(update(t.outbox).where(*waiting, c.created_at >= cutoff).values(
            status="pending", next_attempt_at=now, claimed_until=None, last_error=""))
        skipped = await conn.execute(update(t.outbox).where(*waiting, c.created_at < cutoff).values(
            status="skipped", claimed_until=None, last_error=TOO_OLD.format(hours=max_age_hours)))
    counts = int(revived.rowcount or 0), int(skipped.rowcount or 0)  # type: ignore[attr-defined]
    if any(counts):
        log.warning("printers set up: %d waiting labels will print now, %d older than %g h skipped", *counts,
                    max_age_hours)
    return counts
