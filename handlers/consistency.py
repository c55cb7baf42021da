"""Cross-system consistency: each hour, count what every channel's system holds and what orderbot holds of it,
store the score, and warn the managers once per drop below the threshold (a note when it is back)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from domain import commands as c
from domain.chat import Reply
from domain.clock import hhmm
from domain.consistency import (
    DAY,
    DROP,
    HOUR,
    RECOVER,
    ChannelTally,
    Consistency,
    SourceCount,
    Window,
    alert_step,
    recovery_text,
    warning_text,
)
from handlers.bus import Deps, Router
from handlers.notify import notify_role
from handlers.unit_of_work import AbstractUnitOfWork
from integrations.channels import OrderCounter

log = logging.getLogger(__name__)
router = Router()


@runtime_checkable
class OrderLister(Protocol):
    """A counter that can also name its orders (K3): then the warning says which ones orderbot lacks."""

    system: str

    async def order_ids(self, start: datetime, end: datetime) -> set[str]: ...


async def count_sources(counters: Sequence[OrderCounter], window: Window) -> tuple[SourceCount, ...]:
    """Ask every channel's system about the window (outside any transaction); one that fails is left out."""
    found: list[SourceCount] = []
    for counter in counters:
        try:
            if isinstance(counter, OrderLister):
                ids = await counter.order_ids(window.start, window.end)
                found.append(SourceCount(counter.system, len(ids), tuple(sorted(ids))))
            else:
                found.append(SourceCount(counter.system, await counter.count_orders(window.start, window.end)))
        except Exception as err:  # a channel down must not stop the others' scores
            log.warning("consistency: %s could not be counted for %s: %s", counter.system, window.label(), err)
    return tuple(found)


@router.command(c.ScoreConsistency)
async def score_consistency(cmd: c.ScoreConsistency, uow: AbstractUnitOfWork, deps: Deps) -> Consistency:
    window, now = cmd.window, deps.now
    tallies = []
    for source in cmd.sources:
        if source.ids is None:
            tallies.append(ChannelTally(source.channel, source.count,
                                        await uow.consistency.count(source.channel, window.start, window.end)))
            continue
        held = await uow.consistency.held(source.channel, source.ids)
        missing = tuple(i for i in source.ids if i not in held)
        tallies.append(ChannelTally(source.channel, source.count, len(held), missing, listed=True))
    result = Consistency(window, tuple(tallies))
    previous = await uow.consistency.previous(window.kind, window.start)
    low_since, step = alert_step(previous.low_since if previous else None, result.score, cmd.threshold, window.start)
    await uow.consistency.save(result, low_since, now)
    if not cmd.alert or step is None:
        return result
    if step == DROP and low_since is not None and await uow.marks.once([f"consistency:low:{low_since.isoformat()}"], now):
        day = (await uow.consistency.latest()).get(DAY)
        text = warning_text(result, cmd.threshold, cmd.shown_ids, day.score if day else None)
        await notify_role(uow, deps, "manager", Reply(text, markdown=True),
                          dedup_key=f"consistency:low:{low_since.isoformat()}")
    elif step == RECOVER and previous is not None and previous.low_since is not None:
        key = f"consistency:ok:{previous.low_since.isoformat()}"
        if await uow.marks.once([key], now):
            await notify_role(uow, deps, "manager", Reply(recovery_text(result, cmd.threshold, previous.low_since),
                                                          markdown=True), dedup_key=key)
    return result


async def summary_line(uow: AbstractUnitOfWork) -> str | None:
    """概况's line: the latest hour's and day's scores; None before the first score."""
    latest = await uow.consistency.latest()
    if not latest:
        return None
    parts = []
    for kind, word in ((HOUR, "最近一小时"), (DAY, "今日")):
        row = latest.get(kind)
        if row is not None:
            low = "（低于预警线）" if row.low_since is not None else ""
            span = f"{hhmm(row.window_start)}–{hhmm(row.window_end)}" if kind == HOUR else f"截至 {hhmm(row.window_end)}"
            parts.append(f"{word}（{span}）{row.score:.1f}%{low}")
    return "跨系统一致性：" + " · ".join(parts)
