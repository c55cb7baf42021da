"""Incidents (异常) in the `exceptions` table: opened by jobs and reactions, claimed and resolved by people."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.incidents import Incident
from integrations.db import tables as t
from integrations.db.engine import HotStatement

_x = t.exceptions.c
_OPEN = _x.resolved_at.is_(None)


class IncidentRepository:
    # 查询 reads an order's open incidents with every answer: built once, run straight on asyncpg
    _open_of_order = HotStatement(
        select(t.exceptions).where(_OPEN, _x.order_no == bindparam("b_order_no")).order_by(_x.opened_at.desc(), _x.id.desc())
    )

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def open(
        self, *, kind: str, message: str, at: datetime, order_no: str | None = None,
        sku: str | None = None, store: str | None = None, severity: str = "warning",
    ) -> None:
        await self.add_many([Incident(kind, message, at, order_no, sku, store, severity)])

    async def add_many(self, incidents: Sequence[Incident]) -> None:
        """New incidents in one executemany (their ids are not read back)."""
        if incidents:
            await self.conn.execute(insert(t.exceptions), [
                {"kind": i.kind, "order_no": i.order_no, "sku": i.sku, "store": i.store, "severity": i.severity,
                 "message": i.message, "opened_at": i.opened_at, "resolution": ""}
                for i in incidents
            ])

    async def open_one(self, incident: Incident) -> int:
        """Open one incident and return its number (the 异常编号 people answer with)."""
        result = await self.conn.execute(
            insert(t.exceptions).values(
                kind=incident.kind, order_no=incident.order_no, sku=incident.sku, store=incident.store,
                severity=incident.severity, message=incident.message, opened_at=incident.opened_at, resolution="",
            ).returning(_x.id)
        )
        incident.id = int(result.scalar_one())
        return incident.id

    async def rewrite(self, incident_id: int, message: str) -> None:
        """A summary incident's text, brought up to date (an import's shortages, batch after batch)."""
        await self.conn.execute(update(t.exceptions).where(_x.id == incident_id).values(message=message))

    async def get(self, incident_id: int) -> Incident | None:
        row = (await self.conn.execute(select(t.exceptions).where(_x.id == incident_id))).first()
        return _incident(row) if row is not None else None

    async def list_open(self, *, kinds: Sequence[str] = (), order_no: str | None = None) -> list[Incident]:
        """Unresolved incidents, newest first."""
        if order_no and not kinds:
            return [_incident_of(m) for m in await self._open_of_order.fetch(self.conn, {"b_order_no": order_no})]
        stmt = select(t.exceptions).where(_OPEN).order_by(_x.opened_at.desc(), _x.id.desc())
        if kinds:
            stmt = stmt.where(_x.kind.in_(kinds))
        if order_no:
            stmt = stmt.where(_x.order_no == order_no)
        return [_incident(r) for r in await self.conn.execute(stmt)]

    async def count_open(self) -> int:
        return int((await self.conn.execute(select(func.count()).select_from(t.exceptions).where(_OPEN))).scalar_one())

    async def orders_with_open(self, kind: str, order_nos: Sequence[str]) -> set[str]:
        """Which of `order_nos` already have an unresolved incident of `kind`."""
        stmt = select(_x.order_no).where(_x.kind == kind, _OPEN, _x.order_no.in_(list(order_nos)))
        return set((await self.conn.execute(stmt)).scalars())

    async def unacknowledged_since(self, before: datetime) -> list[Incident]:
        """Open incidents nobody claimed, opened before `before`, oldest first."""
        stmt = select(t.exceptions).where(_x.acknowledged_at.is_(None), _OPEN, _x.opened_at < before).order_by(_x.id)
        return [_incident(r) for r in await self.conn.execute(stmt)]

    async def acknowledge(self, incident: Incident) -> bool:
        """Store the claim unless someone claimed or resolved it meanwhile; False then."""
        return await self._change(
            and_(_x.id == incident.id, _x.acknowledged_at.is_(None), _OPEN),
            acknowledged_by=incident.acknowledged_by, acknowledged_at=incident.acknowledged_at,
        )

    async def resolve(self, incident: Incident) -> bool:
        """Store the resolution unless someone resolved it meanwhile; False then."""
        return await self._change(
            and_(_x.id == incident.id, _OPEN),
            acknowledged_by=incident.acknowledged_by, acknowledged_at=incident.acknowledged_at,
            resolved_by=incident.resolved_by, resolved_at=incident.resolved_at, resolution=incident.resolution,
        )

    async def _change(self, where: Any, **values: Any) -> bool:
        result = await self.conn.execute(update(t.exceptions).where(where).values(**values))
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _incident(row: Any) -> Incident:
    return _incident_of(row._mapping)


def _incident_of(m: Any) -> Incident:
    """From anything read by column name (a RowMapping, an asyncpg Record)."""
    return Incident(
        kind=m["kind"], message=m["message"], opened_at=m["opened_at"],  # type: ignore[arg-type]
        order_no=m["order_no"], sku=m["sku"], store=m["store"], severity=m["severity"], id=m["id"],
        acknowledged_by=m["acknowledged_by"], acknowledged_at=m["acknowledged_at"],
        resolved_by=m["resolved_by"], resolved_at=m["resolved_at"], resolution=m["resolution"] or "",
    )
