"""Customers: remembered when their first order arrives; their settlement held and released."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.customers import FROM_KEYS, NAMED, Customer, KnownCustomer, OtherOrder, customer_number
from integrations.db import tables as t
from integrations.db.engine import HotStatement
from integrations.db.numbering import next_ids

_c = t.customers.c
_o = t.orders.c


class CustomerRepository:
    # built once: an order's creation checks its customer, and building a statement costs more than running it
    _known = select(_c.customer_id).where(_c.customer_id.in_(bindparam("b_ids", expanding=True)))
    _insert = insert(t.customers)
    _hold = (
        update(t.customers).where(_c.customer_id == bindparam("b_customer_id"))
        .values(settlement_hold=True, hold_reason=bindparam("b_reason"), updated_at=bindparam("b_at"))
    )

    # 查询 shows them with every answer: the count (a window over all of them) and the first few in one read
    _other_orders = HotStatement(
        select(_o.order_no, _o.channel, _o.state, func.count().over().label("total"))
        .where(_o.customer_id == bindparam("b_customer_id"), _o.order_no != bindparam("b_but"), _o.parent_no.is_(None))
        .order_by(_o.created_at.desc(), _o.id.desc())
        .limit(bindparam("b_limit"))
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
            await self.create(missing, NAMED, at)

    async def create(self, customers: Sequence[Customer], origin: str, at: datetime) -> None:
        """New customers (their ids not taken: a concurrent twin's insert fails the unit of work, which is retried)."""
        if customers:
            await self.conn.execute(self._insert, [
                {"customer_id": c.customer_id, "name": c.name, "phone": c.phone, "settlement_hold": False,
                 "hold_reason": "", "updated_at": at, "origin": origin}
                for c in customers
            ])

    async def new_ids(self, count: int, at: datetime) -> list[str]:
        """`count` fresh customer numbers (C00000001, ...), never given twice."""
        if count <= 0:
            return []
        if self.conn.dialect.name == "postgresql":
            seqs = await next_ids(self.conn, t.customer_numbers, count)
        else:
            stmt = insert(t.customer_numbers).values([{"created_at": at}] * count).returning(t.customer_numbers.c.id)
            seqs = sorted(int(i) for i in (await self.conn.execute(stmt)).scalars())
        return [customer_number(seq) for seq in seqs]

    async def known(self, customer_ids: Sequence[str]) -> dict[str, KnownCustomer]:
        """The customers among `customer_ids` that exist, with their member cards (for the merge rules)."""
        ids = sorted(set(customer_ids))
        if not ids:
            return {}
        rows = await self.conn.execute(
            select(_c.customer_id, _c.name, _c.origin, _c.merged_into).where(_c.customer_id.in_(ids))
        )
        found = {r.customer_id: KnownCustomer(r.customer_id, r.name, r.origin, _age(r.customer_id, r.origin),
                                              set(), r.merged_into) for r in rows}
        k = t.customer_keys.c
        cards = await self.conn.execute(
            select(k.customer_id, k.value).where(k.customer_id.in_(list(found)), k.kind == "member_card")
        )
        for r in cards:
            found[r.customer_id].cards.add(r.value)  # type: ignore[union-attr]
        return found

    async def merge(self, merged: str, survivor: str, at: datetime) -> int:
        """`merged`'s orders, receivables and settlement hold go to `survivor`; returns the orders moved."""
        moved = await self.conn.execute(
            update(t.orders).where(t.orders.c.customer_id == merged).values(customer_id=survivor)
        )
        await self.conn.execute(
            update(t.receivables).where(t.receivables.c.customer_id == merged).values(customer_id=survivor)
        )
        row = (await self.conn.execute(
            select(_c.settlement_hold, _c.hold_reason, _c.name).where(_c.customer_id == merged)
        )).first()
        if row is not None and row.name:  # a survivor known by no name takes the merged one's (the next merge checks it)
            await self.conn.execute(
                update(t.customers).where(_c.customer_id == survivor, _c.name == "").values(name=row.name)
            )
        if row is not None and row.settlement_hold:
            await self.conn.execute(
                update(t.customers).where(_c.customer_id == survivor, _c.settlement_hold.is_(False))
                .values(settlement_hold=True, hold_reason=row.hold_reason, updated_at=at)
            )
        await self.conn.execute(
            update(t.customers).where(_c.customer_id == merged)
            .values(merged_into=survivor, settlement_hold=False, hold_reason="", updated_at=at)
        )
        return int(moved.rowcount)  # type: ignore[attr-defined]

    async def other_orders(self, customer_id: str, but: str, limit: int) -> tuple[int, list[OtherOrder]]:
        """The customer's other orders (not split-off children), newest first: how many, and the first `limit`."""
        rows = await self._other_orders.fetch(self.conn, {"b_customer_id": customer_id, "b_but": but, "b_limit": limit})
        if not rows:
            return 0, []
        return int(rows[0]["total"]), [OtherOrder(r["order_no"], r["channel"], r["state"]) for r in rows]

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


def _age(customer_id: str, origin: str) -> int:
    if origin != FROM_KEYS:
        return 0
    digits = customer_id[1:]
    return int(digits) if digits.isdigit() else 0


def _customer(row: Any) -> Customer:
    m = row._mapping
    return Customer(m["customer_id"], m["name"], m["phone"], bool(m["settlement_hold"]), m["hold_reason"] or "",
                    bool(m["sms_opt_out"]))
