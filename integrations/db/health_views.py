"""Read models of the health dashboard (订单健康度): a few grouped queries, each over all three ranges at once.

Every query takes the ranges' starts and `now` from the caller (an injected clock in tests) and counts what
happened in [start, now). The definitions are in README "Health dashboard".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain import health as h
from integrations.db import tables as t

_a, _o, _x, _b, _s, _w = t.audit_log.c, t.orders.c, t.exceptions.c, t.outbox.c, t.aftersales.c, t.waybill_drafts.c


@dataclass(frozen=True)
class StateTime:
    state: str
    stays: int  # stays in this state that ended in the range
    mean_s: float


@dataclass(frozen=True)
class Processing:
    overall_s: float | None  # mean time from paid to shipped, orders shipped in the range
    shipped: int
    by_state: list[StateTime] = field(default_factory=list)


@dataclass(frozen=True)
class Anomalies:
    refused: int  # triggers refused as illegal from the order's state (someone tried to skip or go back)
    forced: int  # orders forced into 签收异常 (the courier's report contradicted the warehouse)
    attempts: int  # every order trigger: state changes made plus the refused ones

    @property
    def rate(self) -> float | None:
        return h.rate(self.refused + self.forced, self.attempts)


@dataclass(frozen=True)
class FirstContact:
    durations_s: list[float]  # one per inquiry answered in the range

    @property
    def mean_s(self) -> float | None:
        return h.mean(self.durations_s)

    @property
    def median_s(self) -> float | None:
        return h.median(self.durations_s)


@dataclass(frozen=True)
class Pushes:
    by_channel: dict[str, dict[str, int]]  # channel → status (pending | delivered | dead) → rows

    def total(self, status: str) -> int:
        return sum(statuses.get(status, 0) for statuses in self.by_channel.values())


@dataclass(frozen=True)
class ConsistencyPoint:
    kind: str  # hour | day
    window_end: datetime
    score: float


@dataclass(frozen=True)
class RangeFigures:
    processing: Processing
    anomalies: Anomalies
    first_contact: FirstContact
    orders_by_state: dict[str, int]
    pushes: Pushes
    consistency: list[ConsistencyPoint]  # hour scores for today, day scores for 7 and 30 days


@dataclass(frozen=True)
class OpenIncident:
    kind: str
    opened_at: datetime


@dataclass(frozen=True)
class HealthFigures:
    now: datetime
    ranges: dict[str, RangeFigures]
    open_incidents: list[OpenIncident]
    open_inquiries: int  # after-sales not yet answered, address changes still waiting for their new label
    consistency: ConsistencyPoint | None  # the newest score; None while none has been computed


class HealthViews:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def figures(self, starts: Mapping[str, datetime], now: datetime) -> HealthFigures:
        processing = await self.processing(starts, now)
        anomalies = await self.anomalies(starts, now)
        first_contact = await self.first_contact(starts, now)
        by_state = await self.orders_by_state(starts, now)
        pushes = await self.pushes(starts, now)
        scores = await self.consistency_scores(min(starts.values()), now)
        ranges = {
            key: RangeFigures(processing[key], anomalies[key], first_contact[key], by_state[key], pushes[key],
                              _series(scores, key, start))
            for key, start in starts.items()
        }
        return HealthFigures(now, ranges, await self.open_incidents(), await self.open_inquiries(),
                             scores[-1] if scores else None)

    async def processing(self, starts: Mapping[str, datetime], now: datetime) -> dict[str, Processing]:
        """Time spent in each state (entered → left, for stays that ended in the range), and per order the sum of
        its stays from paid to shipped (orders shipped in the range)."""
        oldest = min(starts.values())
        stays = self._stays(oldest)
        spent = _seconds(self.conn, stays.c.left_at, stays.c.entered_at)
        ended = and_(stays.c.left_at.is_not(None), stays.c.left_at >= oldest, stays.c.left_at < now)
        cols: list[Any] = []
        for key, start in starts.items():
            inside = stays.c.left_at >= start
            cols += [func.count(case((inside, 1))).label(f"n_{key}"), func.sum(case((inside, spent))).label(f"s_{key}")]
        per_state = (await self.conn.execute(select(stays.c.state, *cols).where(ended).group_by(stays.c.state))).all()

        per_order = (
            select(
                stays.c.order_no,
                func.sum(case((stays.c.state.in_(h.PROCESSING_STATES), spent), else_=literal(0.0))).label("total"),
                func.max(case((stays.c.next_state == "shipped", stays.c.left_at))).label("shipped_at"),
            )
            .where(ended).group_by(stays.c.order_no).subquery()
        )
        shipped_cols: list[Any] = []
        for key, start in starts.items():
            inside = per_order.c.shipped_at >= start
            shipped_cols += [func.count(case((inside, 1))).label(f"n_{key}"),
                             func.sum(case((inside, per_order.c.total))).label(f"s_{key}")]
        overall = (await self.conn.execute(
            select(*shipped_cols).where(per_order.c.shipped_at.is_not(None))
        )).one()._mapping

        result = {}
        for key in starts:
            by_state = [StateTime(r.state, int(r._mapping[f"n_{key}"]), float(r._mapping[f"s_{key}"]) / r._mapping[f"n_{key}"])
                        for r in per_state if r._mapping[f"n_{key}"]]
            shipped = int(overall[f"n_{key}"] or 0)
            overall_s = float(overall[f"s_{key}"]) / shipped if shipped else None
            result[key] = Processing(overall_s, shipped, by_state)
        return result

    def _stays(self, oldest: datetime) -> Any:
        """Each state change of an order touched since `oldest`, with when the order left that state again."""
        moved = and_(
            _a.entity == "order", _a.outcome == "ok", _a.to_state.is_not(None), _a.action != "import",
            or_(_a.from_state.is_(None), _a.from_state != _a.to_state),  # an address change is no state change
        )
        touched = select(_a.entity_id).where(_a.entity == "order", _a.at >= oldest)
        after = {"partition_by": _a.entity_id, "order_by": (_a.at, _a.id)}
        return (
            select(
                _a.entity_id.label("order_no"), _a.to_state.label("state"), _a.at.label("entered_at"),
                func.lead(_a.at).over(**after).label("left_at"),  # type: ignore[arg-type]
                func.lead(_a.to_state).over(**after).label("next_state"),  # type: ignore[arg-type]
            )
            .where(moved, _a.entity_id.in_(touched))
            .subquery()
        )

    async def anomalies(self, starts: Mapping[str, datetime], now: datetime) -> dict[str, Anomalies]:
        refused = and_(_a.outcome == "refused", _a.detail["code"].as_string() == "illegal_transition")
        changed = and_(_a.outcome == "ok", _a.from_state.is_not(None), _a.to_state.is_not(None),
                       _a.from_state != _a.to_state)
        forced = and_(changed, _a.to_state == "delivery_exception")
        cols: list[Any] = []
        for key, start in starts.items():
            inside = _a.at >= start
            cols += [func.count(case((and_(inside, refused), 1))).label(f"r_{key}"),
                     func.count(case((and_(inside, forced), 1))).label(f"f_{key}"),
                     func.count(case((and_(inside, or_(changed, refused)), 1))).label(f"a_{key}")]
        row = (await self.conn.execute(
            select(*cols).where(_a.entity == "order", _a.at >= min(starts.values()), _a.at < now)
        )).one()._mapping
        return {key: Anomalies(int(row[f"r_{key}"]), int(row[f"f_{key}"]), int(row[f"a_{key}"])) for key in starts}

    async def first_contact(self, starts: Mapping[str, datetime], now: datetime) -> dict[str, FirstContact]:
        """A customer's inquiry is an after-sale request (opened → first answering state) or an address change
        that needed a new label (label voided → new label confirmed); counted in the range it was answered in."""
        oldest = min(starts.values())
        answered = (
            select(_a.entity_id.label("aftersale_no"), func.min(_a.at).label("answered_at"))
            .where(_a.entity == "aftersale", _a.outcome == "ok", _a.to_state.in_(h.AFTERSALE_ANSWERED))
            .group_by(_a.entity_id).subquery()
        )
        aftersales = await self.conn.execute(
            select(_s.created_at, answered.c.answered_at)
            .join(answered, answered.c.aftersale_no == _s.aftersale_no)
            .where(answered.c.answered_at >= oldest, answered.c.answered_at < now)
        )
        relabels = await self.conn.execute(
            select(_w.created_at, _w.used_at).where(_w.status == "used", _w.used_at >= oldest, _w.used_at < now)
        )
        cases = [(asked, done) for asked, done in [*aftersales.all(), *relabels.all()]]
        return {
            key: FirstContact([(done - asked).total_seconds() for asked, done in cases if done >= start])
            for key, start in starts.items()
        }

    async def open_inquiries(self) -> int:
        waiting = select(func.count()).where(_s.state.not_in(h.AFTERSALE_ANSWERED))
        drafts = select(func.count()).select_from(t.waybill_drafts).where(_w.status == "draft")
        return int((await self.conn.execute(waiting)).scalar_one()) + int((await self.conn.execute(drafts)).scalar_one())

    async def orders_by_state(self, starts: Mapping[str, datetime], now: datetime) -> dict[str, dict[str, int]]:
        """Orders created in the range by their state now; a split order counts as its child orders."""
        child = t.orders.alias("child")
        split_parent = exists().where(child.c.parent_no == _o.order_no)
        cols = [func.count(case((_o.created_at >= start, 1))).label(f"n_{key}") for key, start in starts.items()]
        rows = (await self.conn.execute(
            select(_o.state, *cols)
            .where(_o.created_at >= min(starts.values()), _o.created_at < now, ~split_parent).group_by(_o.state)
        )).all()
        return {key: {r.state: int(r._mapping[f"n_{key}"]) for r in rows if r._mapping[f"n_{key}"]} for key in starts}

    async def pushes(self, starts: Mapping[str, datetime], now: datetime) -> dict[str, Pushes]:
        """Outbox rows (everything sent outward) created in the range, by channel and status."""
        cols = [func.count(case((_b.created_at >= start, 1))).label(f"n_{key}") for key, start in starts.items()]
        rows = (await self.conn.execute(
            select(_b.channel, _b.status, *cols)
            .where(_b.created_at >= min(starts.values()), _b.created_at < now).group_by(_b.channel, _b.status)
        )).all()
        result: dict[str, Pushes] = {}
        for key in starts:
            by_channel: dict[str, dict[str, int]] = {}
            for r in rows:
                if r._mapping[f"n_{key}"]:
                    by_channel.setdefault(r.channel, {})[r.status] = int(r._mapping[f"n_{key}"])
            result[key] = Pushes(by_channel)
        return result

    async def open_incidents(self) -> list[OpenIncident]:
        rows = await self.conn.execute(select(_x.kind, _x.opened_at).where(_x.resolved_at.is_(None)))
        return [OpenIncident(r.kind, r.opened_at) for r in rows]

    async def consistency_scores(self, since: datetime, now: datetime) -> list[ConsistencyPoint]:
        """The cross-system consistency scores stored since `since`, oldest first; [] while none is stored.

        The scores are computed by the `consistency` job into `consistency_scores` (integrations/db/consistency.py);
        on a schema without that table there is no score yet and the dashboard shows "—"."""
        table = getattr(t, "consistency_scores", None)
        if table is None:
            return []
        c = table.c
        rows = await self.conn.execute(
            select(c.kind, c.window_end, c.score).where(c.window_end > since, c.window_end <= now)
            .order_by(c.window_end, c.kind)
        )
        return [ConsistencyPoint(r.kind, r.window_end, float(r.score)) for r in rows]


def _series(scores: list[ConsistencyPoint], key: str, start: datetime) -> list[ConsistencyPoint]:
    kind = "hour" if key == "today" else "day"
    return [p for p in scores if p.kind == kind and p.window_end > start]


def _seconds(conn: AsyncConnection, later: Any, earlier: Any) -> Any:
    """later − earlier in seconds, as SQL: PostgreSQL subtracts timestamps, SQLite counts Julian days."""
    if conn.dialect.name == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return func.extract("epoch", later - earlier)
