"""Logistics arbitration: the tracking sweep (pushed tracks first, HTTP polls as a small fallback), and what a
conflict sets off (exception, push, settlement hold)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, select, update

from domain import commands as c
from domain.arbitration import (
    NO_TRACK,
    CourierReport,
    FlagLogisticsConflicts,
    LogisticsConflict,
    WarehouseView,
    arbitrate,
)
from domain.chat import Button, Card
from domain.errors import Conflict, DomainError
from handlers.bus import Deps, MessageBus, Router
from handlers.notify import notify_role
from integrations.db import tables as t
from integrations.db.courier_tracks import report_of, track_row, upsert_tracks
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from integrations.logistics.kuaidi100 import CourierTracking, carrier_for

log = logging.getLogger(__name__)
router = Router()
ACTOR, VIA = "logistics_sweep", "job"
# delivery_exception: a person reported the parcel missing; a courier "signed" then is the three-way conflict
SWEEP_STATES = ("packed", "shipped", "in_transit", "delivery_exception")  # packed: a parcel signed before it left is the case's conflict


FALLBACK_AFTER = timedelta(hours=6)  # a waybill with no pushed track by then: its subscription may have failed
FALLBACK_LIMIT = 200  # at most this many HTTP polls per sweep, oldest first


@dataclass
class SweepReport:
    tracked: int = 0  # orders arbitrated from pushed tracks (courier_tracks), no HTTP
    polled: int = 0  # fallback: orders without a track, polled over HTTP
    answered: int = 0
    moved: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    conflicts: int = 0
    failed_batches: int = 0
    seconds: float = 0.0
    fallback_seconds: float = 0.0  # of `seconds`, the fallback poll

    @property
    def swept(self) -> int:
        return self.tracked + self.polled

    def summary(self) -> str:
        moved = "，".join(f"{k} {v}" for k, v in sorted(self.moved.items())) or "无"
        return (
            f"推送轨迹 {self.tracked} 单，补查 {self.polled} 单（有轨迹 {self.answered} 单），推进：{moved}，"
            f"新冲突 {self.conflicts} 单，失败批次 {self.failed_batches}，用时 {self.seconds:.1f} 秒"
        )


_o, _k = t.orders.c, t.courier_tracks.c
_ORDER_COLUMNS = (_o.order_no, _o.state, _o.waybill, _o.shipped_at, _o.customer_id, _o.store)
_tracked_page = (
    select(*_ORDER_COLUMNS, _k.status, _k.signed_at, _k.last_at, _k.last_context)
    .select_from(t.orders.join(t.courier_tracks, _k.waybill == _o.waybill))
    .where(and_(_o.state.in_(SWEEP_STATES), _o.order_no > bindparam("after")))
    .order_by(_o.order_no)
    .limit(bindparam("size"))
)
_age = func.coalesce(_o.shipped_at, _o.updated_at)  # a packed order has no shipped_at yet
_untracked = (
    select(*_ORDER_COLUMNS)
    .select_from(t.orders.outerjoin(t.courier_tracks, _k.waybill == _o.waybill))
    .where(and_(_o.state.in_(SWEEP_STATES), _o.waybill.is_not(None), _k.waybill.is_(None),
                _age <= bindparam("cutoff", type_=t.TS)))
    .order_by(_age, _o.order_no)
    .limit(bindparam("size"))
)


async def logistics_sweep(
    db: Database, bus: MessageBus, courier: CourierTracking, deps: Deps, *, batch_size: int = 1000,
    concurrency: int = 200, batches_in_flight: int = 4, fallback_after: timedelta = FALLBACK_AFTER,
    fallback_limit: int = FALLBACK_LIMIT,
) -> SweepReport:
    """Arbitrate every trackable order against the latest pushed report of its waybill, page by page;
    then poll over HTTP the few (at most `fallback_limit`) that have had no push for `fallback_after`.

    Reading the next page overlaps with applying the previous ones (`batches_in_flight`).
    """
    started = time.perf_counter()
    report = SweepReport()
    pages = asyncio.Semaphore(batches_in_flight)
    tasks: list[asyncio.Task[None]] = []
    after = ""
    while True:
        async with db.engine.connect() as conn:
            rows = (await conn.execute(_tracked_page, {"after": after, "size": batch_size})).all()
        if not rows:
            break
        after = rows[-1].order_no
        report.tracked += len(rows)
        await pages.acquire()
        task = asyncio.create_task(_apply_page(rows, {r.waybill: report_of(r) for r in rows}, bus, report))
        task.add_done_callback(lambda _: pages.release())
        tasks.append(task)
    await asyncio.gather(*tasks)
    if fallback_limit > 0:
        polling = time.perf_counter()
        await _poll_untracked(db, bus, courier, deps, report, deps.now - fallback_after, fallback_limit, concurrency)
        report.fallback_seconds = time.perf_counter() - polling
    report.seconds = time.perf_counter() - started
    return report


async def _poll_untracked(
    db: Database, bus: MessageBus, courier: CourierTracking, deps: Deps, report: SweepReport,
    cutoff: datetime, limit: int, concurrency: int,
) -> None:
    """What polling finds is stored as the waybill's track, so the next sweep polls the next-oldest ones."""
    async with db.engine.connect() as conn:
        rows = (await conn.execute(_untracked, {"cutoff": cutoff, "size": limit})).all()
    if not rows:
        return
    report.polled += len(rows)
    try:
        tracks = await courier.track_many([r.waybill for r in rows], gate=asyncio.Semaphore(concurrency))
    except Exception:
        report.failed_batches += 1
        log.exception("logistics sweep: the fallback poll of %d waybills failed", len(rows))
        return
    found = {w: x for w, x in tracks.items() if x.status != NO_TRACK}
    report.answered += len(found)
    if found:
        async with db.engine.begin() as conn:
            await upsert_tracks(conn, [track_row(x, carrier_for(x.waybill, ""), deps.now) for x in found.values()])
    await _apply_page(rows, found, bus, report)


async def _apply_page(rows: Sequence[Any], tracks: dict[str, CourierReport], bus: MessageBus, report: SweepReport) -> None:
    try:
        moves: dict[str, list[str]] = {}
        conflicts: list[LogisticsConflict] = []
        not_received = await _reported_missing(bus, [r.order_no for r in rows if r.state == "delivery_exception"])
        for r in rows:
            track = tracks.get(r.waybill)
            if track is None:
                continue
            says = False if r.order_no in not_received else None
            verdict = arbitrate(WarehouseView(r.order_no, r.state, r.shipped_at), track, customer_says_received=says)
            if verdict.conflict:
                conflicts.append(LogisticsConflict(r.order_no, r.customer_id, r.store, r.waybill, verdict.conflict))
            elif verdict.trigger:
                moves.setdefault(verdict.trigger, []).append(r.order_no)
        for trigger, order_nos in moves.items():
            outcome = await _with_retry(bus, c.FireOrderTriggers(tuple(order_nos), trigger, by=ACTOR, via=VIA))
            report.moved[trigger] = report.moved.get(trigger, 0) + len(outcome.done)
            report.refused += len(outcome.refused)
        if conflicts:
            flagged = await _with_retry(bus, FlagLogisticsConflicts(tuple(conflicts), by=ACTOR, via=VIA))
            report.conflicts += flagged  # not `+= await`: that would read the count before the await
    except Exception:  # one bad page must not stop the sweep; the next sweep sees these orders again
        report.failed_batches += 1
        log.exception("logistics sweep: a batch of %d orders failed", len(rows))


async def _reported_missing(bus: MessageBus, order_nos: list[str]) -> set[str]:
    """Orders whose delivery exception a person reported (customer service for the customer), not the courier."""
    if not order_nos:
        return set()
    a = t.audit_log.c
    async with bus.uow_factory() as uow:
        rows = await uow.conn.execute(
            select(a.entity_id, a.via).where(
                a.entity == "order", a.action == "report_exception", a.outcome == "ok", a.entity_id.in_(order_nos)
            ).order_by(a.id)
        )
        latest = {entity_id: via for entity_id, via in rows}
    return {no for no, via in latest.items() if via != VIA}


async def _with_retry(bus: MessageBus, command: c.Command) -> Any:
    """A batch loses its version check if someone scanned one of its orders meanwhile: reload once and retry."""
    try:
        return await bus.handle(command)
    except Conflict:
        return await bus.handle(command)


@router.command(FlagLogisticsConflicts)
async def flag_logistics_conflicts(cmd: FlagLogisticsConflicts, uow: UnitOfWork, deps: Deps) -> int:
    """New conflicts only (an order with an open logistics_conflict is not flagged again). Returns how many."""
    now = deps.now
    order_nos = [x.order_no for x in cmd.conflicts]
    open_already = set(
        (await uow.conn.execute(
            select(t.exceptions.c.order_no).where(
                t.exceptions.c.kind == "logistics_conflict", t.exceptions.c.resolved_at.is_(None),
                t.exceptions.c.order_no.in_(order_nos),
            )
        )).scalars()
    )
    fresh = [x for x in cmd.conflicts if x.order_no not in open_already]
    if not fresh:
        return 0
    await uow.conn.execute(insert(t.exceptions), [
        {"kind": "logistics_conflict", "order_no": x.order_no, "sku": None, "store": x.store, "severity": "critical",
         "message": f"物流冲突 订单 {x.order_no} 运单 {x.waybill}：{x.reason}", "opened_at": now, "resolution": ""}
        for x in fresh
    ])
    await _hold_settlement(uow, fresh, now)
    await _report_exceptions(uow, [x.order_no for x in fresh], now, by=cmd.by, via=cmd.via)
    for x in fresh:
        card = Card(
            title=f"物流冲突 · {x.order_no}",
            description=f"{x.reason}。客户 {x.customer_id} 的结算已暂停，核实后可解冻。",
            task_id=f"logistics-conflict-{x.order_no}",
            fields=(("运单", x.waybill), ("客户", x.customer_id), ("门店", x.store or "-")),
            buttons=(Button(f"status {x.order_no}", "查看订单", 2), Button(f"release {x.customer_id}", "核实后解冻", 1)),
            highlight=True,
        )
        await notify_role(uow, deps, "supervisor", card, dedup_key=f"logistics_conflict:{x.order_no}")
    return len(fresh)


async def _hold_settlement(uow: UnitOfWork, conflicts: Sequence[LogisticsConflict], now: datetime) -> None:
    reasons: dict[str, str] = {}
    for x in conflicts:
        reasons.setdefault(x.customer_id, f"物流冲突：订单 {x.order_no}（{x.reason}）")
    known = set((await uow.conn.execute(
        select(t.customers.c.customer_id).where(t.customers.c.customer_id.in_(list(reasons)))
    )).scalars())
    missing = [cid for cid in reasons if cid not in known]
    if missing:
        await uow.conn.execute(insert(t.customers), [
            {"customer_id": cid, "name": "", "phone": "", "settlement_hold": False, "hold_reason": "", "updated_at": now}
            for cid in missing
        ])
    await uow.conn.execute(
        update(t.customers).where(t.customers.c.customer_id == bindparam("b_customer_id"))
        .values(settlement_hold=True, hold_reason=bindparam("b_reason"), updated_at=now),
        [{"b_customer_id": cid, "b_reason": reason} for cid, reason in reasons.items()],
    )
    await uow.audit_many([
        {"at": now, "actor": ACTOR, "via": VIA, "entity": "customer", "entity_id": cid, "action": "settlement_hold",
         "from_state": None, "to_state": None, "outcome": "ok", "reason": reason, "detail": None}
        for cid, reason in reasons.items()
    ])


async def _report_exceptions(uow: UnitOfWork, order_nos: list[str], now: datetime, *, by: str, via: str) -> None:
    """Orders already out of the warehouse move to 签收异常; a packed one stays put (it never left)."""
    orders = await uow.orders.get_many(order_nos)
    moved, audit = [], []
    for order in orders.values():
        if order.state not in ("shipped", "in_transit"):
            continue
        try:
            before, after = order.fire("report_exception", now, reason="物流冲突")
        except DomainError:
            continue
        moved.append(order)
        audit.append({"at": now, "actor": by, "via": via, "entity": "order", "entity_id": order.order_no,
                      "action": "report_exception", "from_state": before, "to_state": after, "outcome": "ok",
                      "reason": "物流冲突", "detail": None})
    await uow.orders.save_many(moved)
    await uow.audit_many(audit)
