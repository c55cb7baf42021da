"""What the outbox says about one recipient of a channel, for the limiter (limiter.py): the sends in each window,
the rows waiting, and the reservation of a slot.

On PostgreSQL the counts and the reservation of the slot are ONE statement (a data-modifying CTE): the row takes
its slot exactly when the counts leave room, so admitting a row costs the advisory lock and this statement.
SQLite counts, then reserves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import and_, bindparam, case, func, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import Executable

from integrations.db import tables as t
from integrations.delivery.rows import DEFERRED_PREFIX, OutboxRow

MERGED_PREFIX = "merged into digest "
CARD_UPDATE = "card_update"  # edits an earlier card; not a new message, so never limited or merged
Limits = Sequence[tuple[float, int]]  # (window s, messages)


@dataclass(frozen=True)
class Counts:
    used: tuple[int, ...]  # sends inside each window of the limits, in order
    deferred: int  # the recipient's pending rows put off by the limit
    ours: bool  # the admitted row is still pending under its claim
    urgent_waiting: int  # an urgent row's: the recipient's other due urgent rows not yet admitted
    reserved: bool  # the row has taken its slot (delivered_at = now)


class RecipientRows:
    """Each statement is built once per shape (urgent or not, claimed or not, the limits' count) with its values
    as parameters: a delivery admits its row with it, and building the expression each time cost more than
    running it."""

    def __init__(self, channel: str, windows: Sequence[float], *, is_sqlite: bool, max_merge: int) -> None:
        self._channel = channel
        self._windows = tuple(windows)
        self._is_sqlite = is_sqlite
        self._max_merge = max_merge
        self._built: dict[tuple[Any, ...], Executable] = {}

    def _statement(self, key: tuple[Any, ...], build: Callable[[], Executable]) -> Executable:
        stmt = self._built.get(key)
        if stmt is None:
            stmt = self._built[key] = build()
        return stmt

    async def count_and_reserve(self, conn: AsyncConnection, row: OutboxRow, now: datetime, limits: Limits) -> Counts:
        """The sends in each window, the recipient's deferred pending rows, whether `row` is still pending under
        its claim, (for an urgent row) the recipient's other urgent rows waiting; and the row's slot reserved
        when it is ours and every window of `limits` has room."""
        since = [now - timedelta(seconds=window_s) for window_s in self._windows]
        params: dict[str, Any] = {
            "b_recipient": row.recipient, "b_id": row.id, "b_claimed": row.claimed_until, "b_now": now,
            "b_since": min(since), **{f"b_since{n}": at for n, at in enumerate(since)},
            **{f"b_limit{n}": limit for n, (_, limit) in enumerate(limits)},
        }
        claimed = row.claimed_until is not None
        if self._is_sqlite:
            counting = self._statement(("count", row.urgent, claimed), lambda: self._counting(row.urgent, claimed))
            found = (await conn.execute(counting, params)).one()._mapping
            counts = _counts(found, row.urgent, reserved=False)
            if counts.ours and _fits(counts.used, limits):
                await conn.execute(self._statement(("reserve",), self._reserve_one), params)
                counts = _counts(found, row.urgent, reserved=True)
            return counts
        stmt = self._statement(("count_and_reserve", row.urgent, claimed, len(limits)),
                               lambda: self._counting_and_reserving(row.urgent, claimed, len(limits)))
        found = (await conn.execute(stmt, params)).one()._mapping
        return _counts(found, row.urgent, reserved=found["reserved"] > 0)

    def _counting(self, urgent: bool, claimed: bool) -> Any:
        c = t.outbox.c
        recipient: Any = bindparam("b_recipient")
        sent = self.sent_to(recipient, bindparam("b_since"))
        deferred = (
            (c.channel == self._channel)
            & (c.recipient == recipient)
            & (c.status == "pending")
            & c.last_error.startswith(DEFERRED_PREFIX)
        )
        ours = (c.id == bindparam("b_id")) & (c.status == "pending")
        if claimed:
            ours = ours & (c.claimed_until == bindparam("b_claimed"))
        others_urgent = (
            self.due_for(recipient, bindparam("b_id"), bindparam("b_now"), urgent=True) if urgent else None
        )
        columns = [_how_many(sent & (c.delivered_at > bindparam(f"b_since{n}"))).label(f"used{n}")
                   for n in range(len(self._windows))]
        columns += [_how_many(deferred).label("deferred"), _how_many(ours).label("ours")]
        if others_urgent is not None:
            columns.append(_how_many(others_urgent).label("urgent"))
        return select(*columns).where(
            or_(sent, deferred, c.id == bindparam("b_id"), *([others_urgent] if others_urgent is not None else []))
        )

    def _reserve_one(self) -> Any:
        c = t.outbox.c
        return update(t.outbox).where(c.id == bindparam("b_id")).values(delivered_at=bindparam("b_now"))

    def _counting_and_reserving(self, urgent: bool, claimed: bool, n_limits: int) -> Any:
        c = t.outbox.c
        counted = self._counting(urgent, claimed).cte("counted")
        fits = and_(counted.c.ours > 0, *(counted.c[f"used{n}"] < bindparam(f"b_limit{n}") for n in range(n_limits)))
        room_left = select(counted.c.ours).where(fits).exists()
        reserve = (
            update(t.outbox).where(c.id == bindparam("b_id"), room_left).values(delivered_at=bindparam("b_now"))
            .returning(c.id).cte("reserve")
        )
        return select(counted, select(func.count()).select_from(reserve).scalar_subquery().label("reserved"))

    async def room(self, conn: AsyncConnection, recipient: str, now: datetime, used: Sequence[int],
                   limits: Limits) -> tuple[int, datetime]:
        """Free slots in the fullest window of `limits`, and when a slot frees up in every full window."""
        room, free_at = min(limit for _, limit in limits), now
        for (window_s, limit), used_here in zip(limits, used, strict=True):
            room = min(room, limit - used_here)
            if used_here >= limit:  # the limit-th newest send leaving the window frees one slot
                nth = self._statement(("nth", limit), partial(self._nth_send, limit))
                params = {"b_recipient": recipient, "b_since": now - timedelta(seconds=window_s)}
                oldest = (await conn.execute(nth, params)).scalar_one()
                free_at = max(free_at, oldest + timedelta(seconds=window_s))
        return room, free_at

    def _nth_send(self, limit: int) -> Executable:
        """The delivered_at of the recipient's `limit`-th newest send since `b_since`."""
        return (
            select(t.outbox.c.delivered_at).where(self.sent_to(bindparam("b_recipient"), bindparam("b_since")))
            .order_by(t.outbox.c.delivered_at.desc()).offset(limit - 1).limit(1)
        )

    def sent_to(self, recipient: Any, since: Any) -> ColumnElement[bool]:
        c = t.outbox.c
        return (  # any status: a dead row that timed out once may have been shown
            (c.channel == self._channel)
            & (c.recipient == recipient)
            & (c.kind != CARD_UPDATE)
            & (c.delivered_at > since)
            & ~c.last_error.startswith(MERGED_PREFIX)
        )

    def due_for(self, recipient: Any, row_id: Any, now: Any, *, urgent: bool,
                claimed_until: Any = None) -> ColumnElement[bool]:
        """The recipient's other rows of the same priority that are due and not yet admitted. A routine row's
        digest leaves rows another dispatcher holds alone; an urgent bundle takes them (see limiter.py)."""
        c = t.outbox.c
        due = (
            (c.channel == self._channel)
            & (c.recipient == recipient)
            & (c.status == "pending")
            & (c.kind != CARD_UPDATE)
            & (c.urgent.is_(True) if urgent else c.urgent.is_(False))  # a digest carries routine rows only
            & (c.id != row_id)
            & (c.next_attempt_at <= now)
            & c.delivered_at.is_(None)  # a row that may have been shown already keeps its own slot
        )
        if urgent:
            return due
        held_by_us = c.claimed_until == claimed_until if claimed_until is not None else c.claimed_until.is_(None)
        return due & or_(c.claimed_until.is_(None), c.claimed_until < now, held_by_us)

    async def waiting(self, conn: AsyncConnection, row: OutboxRow, now: datetime, *, urgent: bool) -> list[OutboxRow]:
        c = t.outbox.c
        stmt = select(t.outbox).where(
            self.due_for(row.recipient, row.id, now, urgent=urgent, claimed_until=row.claimed_until)
        ).order_by(c.id).limit(self._max_merge)
        if not self._is_sqlite:
            stmt = stmt.with_for_update(skip_locked=True)
        return [OutboxRow.from_mapping(r._mapping) for r in await conn.execute(stmt)]


def _fits(used: Sequence[int], limits: Limits) -> bool:
    return all(n < limit for n, (_, limit) in zip(used, limits, strict=True))


def _counts(found: RowMapping, urgent: bool, *, reserved: bool) -> Counts:
    used = tuple(int(v) for k, v in found.items() if str(k).startswith("used"))
    return Counts(used, int(found["deferred"]), int(found["ours"]) > 0, int(found["urgent"]) if urgent else 0,
                  reserved)


def _how_many(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)
