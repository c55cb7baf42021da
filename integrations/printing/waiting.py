"""Labels set aside because their store had no printer: once the store has one, the recent ones print."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.delivery.set_aside import revive_set_aside
from integrations.printing.sender import CHANNEL

log = logging.getLogger(__name__)
TOO_OLD = "skipped: older than {hours:g} h when the store's printer was set up"


async def revive_unconfigured(db: Database, stores: Iterable[str], now: datetime, max_age_hours: float) -> tuple[int, int]:
    """Unconfigured labels of stores that now have a printer: due now when younger than the limit, else skipped
    (a label that old was surely handled at the bench by hand). Returns (revived, skipped)."""
    stores = sorted(stores)
    if not stores:
        return 0, 0
    counts = await revive_set_aside(db, CHANNEL, now, where=(t.outbox.c.recipient.in_(stores),),
                                    max_age=timedelta(hours=max_age_hours), too_old=TOO_OLD.format(hours=max_age_hours))
    if any(counts):
        log.warning("printers set up: %d waiting labels will print now, %d older than %g h skipped", *counts,
                    max_age_hours)
    return counts
