"""The consistency score's storage: orderbot's own side of each comparison, and the scores computed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.consistency import Consistency
from integrations.db import tables as t

_o = t.orders.c
_s = t.consistency_scores.c
IDS_PER_QUERY = 1000  # bound parameters per IN (SQLite allows 32,766; a K3 day is a few thousand bills)
MISSING_KEPT = 200  # external ids kept per channel in a stored score


@dataclass(frozen=True)
class StoredScore:
    kind: str
    window_start: datetime
    window_end: datetime
    score: float
    low_since: datetime | None


class ConsistencyRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def held(self, channel: str, external_ids: Sequence[str]) -> set[str]:
        """Which of a channel's orders orderbot holds (whenever it stored them)."""
        found: set[str] = set()
        for i in range(0, len(external_ids), IDS_PER_QUERY):
            chunk = list(external_ids[i:i + IDS_PER_QUERY])
            rows = await self.conn.execute(
                select(_o.external_id).where(_o.channel == channel, _o.external_id.in_(chunk), _o.parent_no.is_(None))
            )
            found.update(rows.scalars())
        return found

    async def count(self, channel: str, start: datetime, end: datetime) -> int:
        """orderbot's orders of a channel stored in [start, end) (child orders of a split are not orders of their own)."""
        stmt = select(func.count()).where(_o.channel == channel, _o.parent_no.is_(None), _o.created_at >= start,
                                          _o.created_at < end)
        return int(await self.conn.scalar(stmt) or 0)

    async def previous(self, kind: str, before: datetime) -> StoredScore | None:
        row = (await self.conn.execute(
            select(t.consistency_scores).where(_s.kind == kind, _s.window_start < before)
            .order_by(_s.window_start.desc()).limit(1)
        )).first()
        return None if row is None else _stored(row._mapping)

    async def latest(self) -> dict[str, StoredScore]:
        """The newest score of each kind."""
        found: dict[str, StoredScore] = {}
        for kind in ("hour", "day"):
            row = (await self.conn.execute(
                select(t.consistency_scores).where(_s.kind == kind).order_by(_s.window_start.desc()).limit(1)
            )).first()
            if row is not None:
                found[kind] = _stored(row._mapping)
        return found

    async def save(self, result: Consistency, low_since: datetime | None, at: datetime) -> None:
        """One row per window: a window scored again (a re-run tick) replaces its row."""
        tallies = [{"channel": x.channel, "source": x.source, "orderbot": x.orderbot,
                    "missing": list(x.missing_in_orderbot[:MISSING_KEPT])} for x in result.tallies]
        values = {"kind": result.window.kind, "window_start": result.window.start, "window_end": result.window.end,
                  "score": result.score, "tallies": tallies, "low_since": low_since, "computed_at": at}
        insert = sqlite.insert if self.conn.dialect.name == "sqlite" else postgresql.insert
        stmt = insert(t.consistency_scores).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[_s.kind, _s.window_start],
            set_={k: stmt.excluded[k] for k in ("window_end", "score", "tallies", "low_since", "computed_at")},
        )
        await self.conn.execute(stmt)


def _stored(row: object) -> StoredScore:
    m = dict(row)  # type: ignore[call-overload]
    return StoredScore(m["kind"], m["window_start"], m["window_end"], float(m["score"]), m["low_since"])
