"""The SMS rows' own states beside pending/delivered/dead, and what the database knows about them.

"skipped" (final): the customer opted out, or the row was too old to send when SMS got configured.
"unconfigured" (waiting, visible): no SMS settings (or no template for its kind) when it came up; at a start with
settings, rows younger than `drain_max_age_hours` are pending again and sent, older ones are skipped.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update

from domain.customers import masked_phone
from domain.events import Change
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from integrations.delivery.rows import OutboxRow

log = logging.getLogger(__name__)

CHANNEL = "sms"
SKIPPED, UNCONFIGURED = "skipped", "unconfigured"
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
    c = t.outbox.c
    waiting = (c.channel == CHANNEL, c.status == UNCONFIGURED)
    cutoff = now - timedelta(hours=max_age_hours)
    async with db.engine.begin() as conn:
        revived = await conn.execute(update(t.outbox).where(*waiting, c.created_at >= cutoff).values(
            status="pending", next_attempt_at=now, claimed_until=None, last_error=""))
        skipped = await conn.execute(update(t.outbox).where(*waiting, c.created_at < cutoff).values(
            status=SKIPPED, claimed_until=None, last_error=TOO_OLD.format(hours=max_age_hours)))
    counts = int(revived.rowcount or 0), int(skipped.rowcount or 0)  # type: ignore[attr-defined]
    if any(counts):
        log.warning("sms configured: %d waiting texts will be sent now, %d older than %g h skipped",
                    counts[0], counts[1], max_age_hours)
    return counts
