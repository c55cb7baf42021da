"""Courier push tracking: subscribe each waybill when it ships; keep the latest pushed report per waybill."""

from __future__ import annotations

import logging

from sqlalchemy import select

from domain import events
from domain.arbitration import NO_TRACK
from handlers.bus import Deps, Router
from integrations.db import tables as t
from integrations.db.courier_tracks import track_row, upsert_tracks
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from integrations.logistics.kuaidi100_push import CHANNEL, SUBSCRIBE, Push

log = logging.getLogger(__name__)
router = Router()


def subscribe_key(waybill: str) -> str:
    return f"courier:subscribe:{waybill}"


@router.events_of(events.OrderShipped)
async def subscribe_waybills(shipped: list[events.OrderShipped], uow: UnitOfWork, deps: Deps) -> None:
    """One subscription per waybill, ever: a waybill already subscribed (a re-ship, a shared label) is skipped
    here rather than left to the outbox's unique dedup key, which would fail the whole shipping wave."""
    wanted: dict[str, events.OrderShipped] = {}
    for event in shipped:
        if event.waybill:
            wanted.setdefault(subscribe_key(event.waybill), event)
    if not wanted:
        return
    found = await uow.conn.execute(select(t.outbox.c.dedup_key).where(t.outbox.c.dedup_key.in_(list(wanted))))
    done = {key for (key,) in found}
    await uow.enqueue_many([
        {"channel": CHANNEL, "kind": SUBSCRIBE, "recipient": e.waybill, "dedup_key": key,
         "payload": {"waybill": e.waybill, "order_no": e.order_no, "phone": e.customer_phone}}
        for key, e in wanted.items() if key not in done
    ], at=deps.now)


async def record_push(db: Database, push: Push, deps: Deps) -> None:
    """Store a verified push; arbitration happens in the next sweep, not in the courier's request."""
    if push.report.status != NO_TRACK:
        async with db.engine.begin() as conn:
            await upsert_tracks(conn, [track_row(push.report, push.carrier, deps.now)])
    if push.status == "abort":  # Kuaidi100 stopped tracking (e.g. 3 days without a scan): the sweep's poll takes over
        log.warning("kuaidi100 stopped pushing %s: %s", push.report.waybill, push.message)
