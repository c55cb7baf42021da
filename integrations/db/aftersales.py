"""After-sales in the database, version-checked like orders."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.aftersale import AfterSale, Approval
from domain.errors import Conflict
from integrations.db import tables as t
from integrations.db.numbering import assign_number


class AfterSaleRepository:
    def __init__(self, conn: AsyncConnection, seen: list[Any]) -> None:
        self.conn = conn
        self.seen = seen

    async def get(self, aftersale_no: str) -> AfterSale | None:
        row = (
            await self.conn.execute(select(t.aftersales).where(t.aftersales.c.aftersale_no == aftersale_no))
        ).first()
        if row is None:
            return None
        aftersale = _aftersale_from_row(row)
        self.seen.append(aftersale)
        return aftersale

    async def for_orders(self, order_nos: Sequence[str]) -> list[AfterSale]:
        """Every after-sale of these orders, oldest first (read-only: not tracked for events)."""
        rows = await self.conn.execute(
            select(t.aftersales).where(t.aftersales.c.order_no.in_(list(order_nos))).order_by(t.aftersales.c.id)
        )
        return [_aftersale_from_row(row) for row in rows]

    async def add(self, aftersale: AfterSale) -> AfterSale:
        row_id = (
            await self.conn.execute(
                insert(t.aftersales)
                .values(
                    aftersale_no=aftersale.aftersale_no or None, order_no=aftersale.order_no,
                    kind=aftersale.kind, reason=aftersale.reason, amount_fen=aftersale.amount_fen,
                    requested_by=aftersale.requested_by, created_at=aftersale.created_at,
                    version=1, **_aftersale_values(aftersale),
                )
                .returning(t.aftersales.c.id)
            )
        ).scalar_one()
        if not aftersale.aftersale_no:
            await assign_number(self.conn, t.aftersales, row_id, aftersale, "aftersale_no", f"AS{row_id:06d}")
        aftersale.version = 1
        self.seen.append(aftersale)
        return aftersale

    async def save(self, aftersale: AfterSale) -> None:
        result = await self.conn.execute(
            update(t.aftersales)
            .where(and_(t.aftersales.c.aftersale_no == aftersale.aftersale_no,
                        t.aftersales.c.version == aftersale.version))
            .values(**_aftersale_values(aftersale), version=aftersale.version + 1)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(f"售后单 {aftersale.aftersale_no} 刚被其他人处理过，请刷新后再看。")
        aftersale.version += 1


def _aftersale_from_row(row: Any) -> AfterSale:
    m = row._mapping
    return AfterSale(
        aftersale_no=m["aftersale_no"], order_no=m["order_no"], kind=m["kind"], reason=m["reason"],
        category=m["category"], amount_fen=m["amount_fen"], state=m["state"],
        approvals=[Approval(a["by"], a["role"], datetime.fromisoformat(a["at"])) for a in m["approvals"]],
        rejected_by=m["rejected_by"], decision_note=m["decision_note"], requested_by=m["requested_by"],
        created_at=m["created_at"],
        updated_at=m["updated_at"], version=m["version"],
    )


def _aftersale_values(a: AfterSale) -> dict[str, Any]:
    return {
        "state": a.state,
        "category": a.category,
        "approvals": [{"by": x.by, "role": x.role, "at": x.at.isoformat()} for x in a.approvals],
        "rejected_by": a.rejected_by,
        "decision_note": a.decision_note,
        "updated_at": a.updated_at or a.created_at,
    }
