"""The SMS rows' own states beside pending/delivered/dead, and what the database knows about them.

"skipped" (final): the customer opted out, or the row was too old to send when SMS got configured.
"unconfigured" (waiting, visible): no SMS settings (or no template for its kind) when it came up; at a start with
settings, rows younger than `drain_max_age_hours` are pending again and sent, older ones are skipped.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from domain.customers import masked_phone
from domain.events import Change
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from integrations.delivery.rows import OutboxRow
from integrations.delivery.set_aside import revive_set_aside

log = logging.getLogger(__name__)

CHANNEL = "sms"
OPTED_OUT = "skipped: opted out"
NOT_CONFIGURED_PREFIX = "not configured: "
TOO_OLD = "skipped: older than {hours:g} h when SMS was configured"


async def opted_out(db: Database, row: OutboxRow) -> str | None:
    """The id of the opted-out customer this text goes to (by the row's customer id, else by its phone), or None."""
    c = t.customers.c
    customer_id = str(row.payload.get("customer_id") or "")
    whose = c.customer_id == customer_id if customer_id else c.phone == row.recipient
    stmt = select(c.customer_id).where(whose, c.sms_opt_out.is_(True)).limit(1)
    async with db.engine.connect() as conn:
        found = (await conn.execute(stmt)).scalar()
    return str(found) if found is not None else None


async def record_skip(db: Database, row: OutboxRow, customer_id: str, at: datetime) -> None:
    """The customer's audit trail says which text was not sent, and why."""
    detail = {"outbox_id": row.id, "kind": row.kind, "order_no": row.payload.get("order_no", ""),
              "phone": masked_phone(row.recipient)}
    async with UnitOfWork(db) as uow:
        uow.acting("system", "sms")
        await uow.record([Change("customer", customer_id, "sms_skipped", reason="opted out", detail=detail)], at)
        await uow.commit()


async def revive_unconfigured(db: Database, now: datetime, max_age_hours: float) -> tuple[int, int]:
    """SMS is configured: unconfigured rows younger than the limit are due now, older ones are skipped.
    Returns (revived, skipped)."""
    counts = await revive_set_aside(db, CHANNEL, now, max_age=timedelta(hours=max_age_hours),
                                    too_old=TOO_OLD.format(hours=max_age_hours))
    if any(counts):
        log.warning("sms configured: %d waiting texts will be sent now, %d older than %g h skipped",
                    counts[0], counts[1], max_age_hours)
    return counts
