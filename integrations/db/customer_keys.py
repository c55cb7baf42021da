"""Customer keys: the names channels give a customer (phone, OpenID, member card, ...), each naming one customer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.customers import Key
from integrations.db import tables as t
from integrations.db.engine import HotStatement, in_list

_k = t.customer_keys.c


class CustomerKeyRepository:
    _owners = select(_k.kind, _k.value, _k.customer_id).where(
        _k.value.in_(bindparam("b_values", expanding=True)), _k.kind.in_(bindparam("b_kinds", expanding=True))
    )
    _hot_add = HotStatement(insert(t.customer_keys), ("kind", "value", "customer_id", "created_at"))
    _keys_of = select(_k.kind, _k.value, _k.customer_id).order_by(_k.id)
    # a shipment's reactions read its customers' keys: built once, as the rest of the command's statements
    _hot_keys_of = in_list(_keys_of, _k.customer_id, "b_customer_ids", read=True)
    _hot_keys_of_kind = in_list(_keys_of.where(_k.kind == bindparam("b_kind")), _k.customer_id, "b_customer_ids",
                                read=True)

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def owners(self, keys: Sequence[Key]) -> dict[Key, str]:
        """Who each key names, for the keys that name someone (one query for a whole import batch)."""
        wanted = set(keys)
        if not wanted:
            return {}
        rows = await self.conn.execute(self._owners, {"b_values": sorted({v for _, v in wanted}),
                                                      "b_kinds": sorted({k for k, _ in wanted})})
        return {(r.kind, r.value): r.customer_id for r in rows if (r.kind, r.value) in wanted}

    async def add(self, owned: Sequence[tuple[Key, str]], at: datetime) -> None:
        if owned:
            await self._hot_add.executemany(self.conn, [
                {"kind": kind, "value": value, "customer_id": cid, "created_at": at} for (kind, value), cid in owned
            ])

    async def of_customers(self, customer_ids: Sequence[str], kind: str | None = None) -> dict[str, list[Key]]:
        if not customer_ids:
            return {}
        params: dict[str, object] = {"b_customer_ids": sorted(set(customer_ids))}
        stmt = self._hot_keys_of
        if kind is not None:
            stmt, params["b_kind"] = self._hot_keys_of_kind, kind
        found: dict[str, list[Key]] = {}
        for r in await stmt.fetch(self.conn, params):
            found.setdefault(r["customer_id"], []).append((r["kind"], r["value"]))
        return found

    async def move(self, from_customer: str, to_customer: str) -> list[Key]:
        """Every key of `from_customer` now names `to_customer`; returns the keys moved."""
        moved = (await self.of_customers([from_customer])).get(from_customer, [])
        if moved:
            await self.conn.execute(
                update(t.customer_keys).where(_k.customer_id == from_customer).values(customer_id=to_customer)
            )
        return moved
