"""Customers: remembered when their first order arrives; their settlement held and released."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.customers import Customer
from integrations.db import tables as t

_c = t.customers.c


class CustomerRepository:
    # built once: an order's creation checks its customer, and building a statement costs more than running it
    _known = select(_c.customer_id).where(_c.customer_id.in_(bindparam("b_ids", expanding=True)))
    _insert = insert(t.customers)
    _hold = (
        update(t.customers).where(_c.customer_id == bindparam("b_customer_id"))
        .values(settlement_hold=True, hold_reason=bindparam("b_reason"), updated_at=bindparam("b_at"))
    )

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def find(self, ref: str) -> Customer | None:
        """A customer by id, whatever the letter case people typed."""
        row = (await self.conn.execute(select(t.customers).where(func.upper(_c.customer_id) == ref.upper()))).first()
        return _customer(row) if row is not None else None

    async def add_missing(self, customers: Sequence[Customer], at: datetime) -> None:
        """Insert the customers not known yet; a known one keeps its name, phone and hold."""
        wanted = {c.customer_id: c for c in customers}
        if not wanted:
            return
        known = set((await self.conn.execute(self._known, {"b_ids": list(wanted)})).scalars())
        missing = [c for cid, c in wanted.items() if cid not in known]
        if missing:
            await self.conn.execute(self._insert, [
                {"customer_id": c.customer_id, "name": c.name, "phone": c.phone, "settlement_hold": False,
                 "hold_reason": "", "updated_at": at}
                for c in missing
            ])

    async def hold(self, reasons: Mapping[str, str], at: datetime) -> None:
        """Hold each customer's settlement with its reason (customers not known yet are added first)."""
        if not reasons:
            return
        await self.add_missing([Customer(cid) for cid in reasons], at)
        await self.conn.execute(
            self._hold, [{"b_customer_id": cid, "b_reason": reason, "b_at": at} for cid, reason in reasons.items()]
        )

    async def release(self, customer_id: str, at: datetime) -> bool:
        """Clear the hold; False if it was not held (any more)."""
        result = await self.conn.execute(
            update(t.customers).where(_c.customer_id == customer_id, _c.settlement_hold.is_(True))
            .values(settlement_hold=False, hold_reason="", updated_at=at)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def set_sms_opt_out(self, customer_id: str, opt_out: bool, at: datetime) -> None:
        await self.conn.execute(
            update(t.customers).where(_c.customer_id == customer_id).values(sms_opt_out=opt_out, updated_at=at)
        )

    async def held(self) -> list[Customer]:
        """Customers whose settlement is on hold, longest held first."""
        stmt = select(t.customers).where(_c.settlement_hold.is_(True)).order_by(_c.updated_at)
        return [_customer(r) for r in await self.conn.execute(stmt)]


def _customer(row: Any) -> Customer:
    m = row._mapping
    return Customer(m["customer_id"], m["name"], m["phone"], bool(m["settlement_hold"]), m["hold_reason"] or "",
                    bool(m["sms_opt_out"]))
