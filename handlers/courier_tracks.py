"""Courier push tracking: subscribe each waybill when it ships; keep the latest pushed report per waybill."""

from __future__ import annotations

import logging

from domain import commands as c
from domain import events
from domain.arbitration import NO_TRACK, FlagLogisticsConflicts, LogisticsConflict
from domain.outbox_systems import TrackingSubscription
from handlers.bus import Deps, Router
from handlers.logistics import ACTOR, VIA, conflicts_of_push
from handlers.unit_of_work import AbstractUnitOfWork
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from integrations.logistics.kuaidi100_push import Push

log = logging.getLogger(__name__)
router = Router()


@router.events_of(events.OrderShipped)
async def subscribe_waybills(shipped: list[events.OrderShipped], uow: AbstractUnitOfWork, deps: Deps) -> None:
    """One subscription per waybill, ever: a waybill already subscribed (a re-ship, a shared label) is skipped
    here rather than left to the outbox's unique dedup key, which would fail the whole shipping wave."""
    wanted: dict[str, TrackingSubscription] = {}
    for e in shipped:
        if e.waybill:
            sub = TrackingSubscription(e.waybill, e.order_no, e.customer_phone)
            wanted.setdefault(str(sub.dedup_key), sub)
    if not wanted:
        return
    done = await uow.outbox_keys.taken(list(wanted))
    await uow.send(*(sub for key, sub in wanted.items() if key not in done), at=deps.now)


@router.command(c.RecordCourierTracks)
async def record_courier_tracks(cmd: c.RecordCourierTracks, uow: AbstractUnitOfWork, deps: Deps) -> None:
    await uow.tracks.record(cmd.tracks, deps.now)


async def record_push(db: Database, push: Push, deps: Deps) -> int:
    """Store a verified push. A conflict it shows (a parcel signed while still packed) is flagged at once, so the
    supervisors' exception push does not wait for the sweep; moving orders on is left to the next sweep, which
    batches them, and it is also the backstop when flagging here fails. Returns how many conflicts it flagged."""
    conflicts: list[LogisticsConflict] = []
    if push.report.status != NO_TRACK:
        async with UnitOfWork(db) as uow:
            await uow.tracks.record([(push.report, push.carrier)], deps.now)
            conflicts = await conflicts_of_push(uow, push.report.waybill)
            await uow.commit()
    flagged = 0
    if conflicts and deps.dispatch is not None:
        try:
            flagged = int(await deps.dispatch(FlagLogisticsConflicts(tuple(conflicts), by=ACTOR, via=VIA)))
        except Exception:  # the track is stored: the next sweep flags it
            log.exception("kuaidi100 push for %s: flagging the conflict failed", push.report.waybill)
    if push.status == "abort":  # Kuaidi100 stopped tracking (e.g. 3 days without a scan): the sweep's poll takes over
        log.warning("kuaidi100 stopped pushing %s: %s", push.report.waybill, push.message)
    return flagged
