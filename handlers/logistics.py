"""Logistics arbitration: the tracking sweep (pushed tracks first, HTTP polls as a small fallback), and what a
conflict sets off (exception, push, settlement hold)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain import commands as c
from domain import facts
from domain.arbitration import (
    NO_TRACK,
    CourierReport,
    FlagLogisticsConflicts,
    LogisticsConflict,
    WarehouseView,
    arbitrate,
)
from domain.chat import Card
from domain.chat_commands import QueryOrder, ReleaseSettlementHold
from domain.chat_commands import button as command_button
from domain.errors import Conflict, DomainError
from domain.incidents import Incident
from handlers.bus import Deps, Router
from handlers.notify import notify_role
from handlers.unit_of_work import AbstractUnitOfWork
from integrations.db.tracking import TrackedOrder
from integrations.logistics.kuaidi100 import CourierTracking, carrier_for

log = logging.getLogger(__name__)
router = Router()
ACTOR, VIA = "logistics_sweep", "job"
Dispatch = Callable[[c.Command], Awaitable[Any]]


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


@router.command(c.SweepLogistics)
async def sweep_logistics(cmd: c.SweepLogistics, uow: AbstractUnitOfWork, deps: Deps) -> SweepReport:
    """Arbitrate every trackable order against the latest pushed report of its waybill, page by page;
    then poll over HTTP the few (at most `fallback_limit`) that have had no push for `fallback_after`.

    Pages are read in this unit of work; each page's moves and conflicts commit in their own (through
    `deps.dispatch`), so one bad page does not undo the others. Reading the next page overlaps with applying
    the previous ones (`batches_in_flight`).
    """
    if deps.dispatch is None:
        raise RuntimeError("the logistics sweep runs through the bus (build_bus sets deps.dispatch)")
    dispatch = deps.dispatch
    started = time.perf_counter()
    report = SweepReport()
    pages = asyncio.Semaphore(cmd.batches_in_flight)
    tasks: list[asyncio.Task[None]] = []
    after = ""
    while page := await uow.tracks.tracked_page(after, cmd.batch_size):
        after = page[-1][0].order_no
        report.tracked += len(page)
        orders = [order for order, _ in page]
        not_received = await _reported_missing(uow, orders)
        await pages.acquire()
        tracks = {order.waybill: track for order, track in page}
        task = asyncio.create_task(_apply_page(orders, tracks, not_received, dispatch, report))
        task.add_done_callback(lambda _: pages.release())
        tasks.append(task)
    await asyncio.gather(*tasks)
    if cmd.fallback_limit > 0 and deps.courier is not None:
        polling = time.perf_counter()
        await _poll_untracked(cmd, uow, deps.courier, deps, dispatch, report)
        report.fallback_seconds = time.perf_counter() - polling
    report.seconds = time.perf_counter() - started
    return report


async def _poll_untracked(
    cmd: c.SweepLogistics, uow: AbstractUnitOfWork, courier: CourierTracking, deps: Deps, dispatch: Dispatch,
    report: SweepReport,
) -> None:
    """What polling finds is stored as the waybill's track, so the next sweep polls the next-oldest ones."""
    orders = await uow.tracks.untracked(deps.now - cmd.fallback_after, cmd.fallback_limit)
    if not orders:
        return
    report.polled += len(orders)
    try:
        tracks = await courier.track_many([o.waybill for o in orders], gate=asyncio.Semaphore(cmd.concurrency))
    except Exception:
        report.failed_batches += 1
        log.exception("logistics sweep: the fallback poll of %d waybills failed", len(orders))
        return
    found = {w: x for w, x in tracks.items() if x.status != NO_TRACK}
    report.answered += len(found)
    if found:
        await dispatch(c.RecordCourierTracks(tuple((x, carrier_for(x.waybill, "")) for x in found.values())))
    await _apply_page(orders, found, await _reported_missing(uow, orders), dispatch, report)


async def conflicts_of_push(uow: AbstractUnitOfWork, waybill: str) -> list[LogisticsConflict]:
    """What the sweep would find a conflict about the orders of a waybill just pushed, so the supervisors hear of
    it now and not at the next sweep; the moves the push allows are left to the sweep, which batches them."""
    page = await uow.tracks.of_waybill(waybill)
    if not page:
        return []
    orders = [order for order, _ in page]
    conflicts, _ = _verdicts(orders, {order.waybill: track for order, track in page},
                             await _reported_missing(uow, orders))
    return conflicts


def _verdicts(
    orders: Sequence[TrackedOrder], tracks: dict[str, CourierReport], not_received: set[str]
) -> tuple[list[LogisticsConflict], dict[str, list[str]]]:
    """The conflicts, and the orders to move by trigger."""
    moves: dict[str, list[str]] = {}
    conflicts: list[LogisticsConflict] = []
    for r in orders:
        track = tracks.get(r.waybill)
        if track is None:
            continue
        says = False if r.order_no in not_received else None
        verdict = arbitrate(WarehouseView(r.order_no, r.state, r.shipped_at), track, customer_says_received=says)
        if verdict.conflict:
            conflicts.append(LogisticsConflict(r.order_no, r.customer_id, r.store, r.waybill, verdict.conflict))
        elif verdict.trigger:
            moves.setdefault(verdict.trigger, []).append(r.order_no)
    return conflicts, moves


async def _apply_page(
    orders: Sequence[TrackedOrder], tracks: dict[str, CourierReport], not_received: set[str], dispatch: Dispatch,
    report: SweepReport,
) -> None:
    try:
        conflicts, moves = _verdicts(orders, tracks, not_received)
        for trigger, order_nos in moves.items():
            outcome = await _with_retry(dispatch, c.FireOrderTriggers(tuple(order_nos), trigger, by=ACTOR, via=VIA))
            report.moved[trigger] = report.moved.get(trigger, 0) + len(outcome.done)
            report.refused += len(outcome.refused)
        if conflicts:
            flagged = await _with_retry(dispatch, FlagLogisticsConflicts(tuple(conflicts), by=ACTOR, via=VIA))
            report.conflicts += flagged  # not `+= await`: that would read the count before the await
    except Exception:  # one bad page must not stop the sweep; the next sweep sees these orders again
        report.failed_batches += 1
        log.exception("logistics sweep: a batch of %d orders failed", len(orders))


async def _reported_missing(uow: AbstractUnitOfWork, orders: Sequence[TrackedOrder]) -> set[str]:
    """Orders whose delivery exception a person reported (customer service for the customer), not the courier."""
    latest = await uow.tracks.exception_reporters([o.order_no for o in orders if o.state == "delivery_exception"])
    return {no for no, via in latest.items() if via != VIA}


async def _with_retry(dispatch: Dispatch, command: c.Command) -> Any:
    """A batch loses its version check if someone scanned one of its orders meanwhile: reload once and retry."""
    try:
        return await dispatch(command)
    except Conflict:
        return await dispatch(command)


@router.command(FlagLogisticsConflicts)
async def flag_logistics_conflicts(cmd: FlagLogisticsConflicts, uow: AbstractUnitOfWork, deps: Deps) -> int:
    """New conflicts only (an order with an open logistics_conflict is not flagged again). Returns how many."""
    now = deps.now
    open_already = await uow.incidents.orders_with_open("logistics_conflict", [x.order_no for x in cmd.conflicts])
    fresh = [x for x in cmd.conflicts if x.order_no not in open_already]
    if not fresh:
        return 0
    await uow.incidents.add_many([
        Incident("logistics_conflict", f"物流冲突 订单 {x.order_no} 运单 {x.waybill}：{x.reason}", now,
                 order_no=x.order_no, store=x.store, severity="critical")
        for x in fresh
    ])
    await _hold_settlement(uow, fresh, now)
    await _report_exceptions(uow, [x.order_no for x in fresh], now)
    for x in fresh:
        card = Card(
            title=f"物流冲突 · {x.order_no}",
            description=f"{x.reason}。客户 {x.customer_id} 的结算已暂停，核实后可解冻。",
            task_id=f"logistics-conflict-{x.order_no}",
            fields=(("运单", x.waybill), ("客户", x.customer_id), ("门店", x.store or "-")),
            buttons=(command_button(QueryOrder, x.order_no, text="查看订单", style=2),
                     command_button(ReleaseSettlementHold, x.customer_id, text="核实后解冻")),
            highlight=True,
        )
        await notify_role(uow, deps, "supervisor", card, dedup_key=f"logistics_conflict:{x.order_no}",
                          urgent=True)
    return len(fresh)


async def _hold_settlement(uow: AbstractUnitOfWork, conflicts: Sequence[LogisticsConflict], now: datetime) -> None:
    reasons: dict[str, str] = {}
    for x in conflicts:
        reasons.setdefault(x.customer_id, f"物流冲突：订单 {x.order_no}（{x.reason}）")
    await uow.customers.hold(reasons, now)
    uow.emit(*(facts.SettlementHeld(cid, reason, ACTOR, VIA) for cid, reason in reasons.items()))


async def _report_exceptions(uow: AbstractUnitOfWork, order_nos: list[str], now: datetime) -> None:
    """Orders already out of the warehouse move to 签收异常; a packed one stays put (it never left)."""
    orders = await uow.orders.get_many(order_nos)
    moved = []
    for order in orders.values():
        if order.state not in ("shipped", "in_transit"):
            continue
        try:
            order.fire("report_exception", now, reason="物流冲突")
        except DomainError:
            continue
        moved.append(order)
    await uow.orders.save_many(moved)
