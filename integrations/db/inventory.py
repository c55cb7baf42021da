"""Stock per store and SKU: reserved, deducted and released by conditional updates that never go below zero."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.errors import Conflict, OutOfStock
from domain.inventory import Stock
from integrations.db import tables as t
from integrations.db.engine import HotStatement
from integrations.db.held_writes import update_one


class InventoryRepository:
    """Reserve, deduct and release are single conditional UPDATEs: correct under concurrency, never negative.

    Deductions wait for `flush` (the unit of work's commit, or the next read or change of stock here): the
    row lock a deduction takes is then held for the commit alone, not for the rest of the shipment's reactions;
    with every order of a store shipping the same SKU, that lock is where concurrent shipments queue."""

    _c = t.inventory.c
    _get = HotStatement(select(t.inventory).where(and_(_c.store == bindparam("b_store"), _c.sku == bindparam("b_sku"))))
    _deduct = HotStatement(
        update(t.inventory)
        .where(and_(_c.store == bindparam("b_store"), _c.sku == bindparam("b_sku"),
                    _c.on_hand >= bindparam("b_qty"), _c.reserved >= bindparam("b_qty")))
        .values(on_hand=_c.on_hand - bindparam("b_qty"), reserved=_c.reserved - bindparam("b_qty"),
                version=_c.version + 1, updated_at=bindparam("b_at"))
    )

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._deductions: dict[tuple[str, str], tuple[int, datetime]] = {}

    async def get(self, store: str, sku: str) -> Stock | None:
        await self.flush()
        m = await self._get.fetchrow(self.conn, {"b_store": store, "b_sku": sku})
        if m is None:
            return None
        return Stock(m["store"], m["sku"], m["on_hand"], m["reserved"], m["version"])

    async def availability(self, skus: Sequence[str], *, lock: bool = False) -> dict[str, dict[str, int]]:
        """Units free per store and SKU. `lock` (PostgreSQL): the rows stay locked to this transaction, taken
        in store and SKU order, so that a plan made from them holds until `reserve_many`."""
        await self.flush()
        stmt = (
            select(t.inventory.c.store, t.inventory.c.sku, t.inventory.c.on_hand - t.inventory.c.reserved)
            .where(t.inventory.c.sku.in_(set(skus)))
            .order_by(t.inventory.c.store, t.inventory.c.sku)
        )
        if lock and self.conn.dialect.name != "sqlite":
            stmt = stmt.with_for_update(of=t.inventory)
        rows = await self.conn.execute(stmt)
        out: dict[str, dict[str, int]] = {}
        for store, sku, available in rows:
            out.setdefault(store, {})[sku] = available
        return out

    async def stores(self) -> list[str]:
        await self.flush()
        rows = await self.conn.execute(select(t.inventory.c.store).distinct().order_by(t.inventory.c.store))
        return [r[0] for r in rows]

    async def save(self, stock: Stock, at: datetime) -> None:
        await self.flush()
        if stock.version == 0:
            await self.conn.execute(
                insert(t.inventory).values(
                    store=stock.store, sku=stock.sku, on_hand=stock.on_hand, reserved=stock.reserved,
                    version=1, updated_at=at,
                )
            )
            stock.version = 1
            return
        result = await self.conn.execute(
            update(t.inventory)
            .where(and_(t.inventory.c.store == stock.store, t.inventory.c.sku == stock.sku,
                        t.inventory.c.version == stock.version))
            .values(on_hand=stock.on_hand, reserved=stock.reserved, version=stock.version + 1, updated_at=at)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(f"门店 {stock.store} 的 {stock.sku} 库存刚被修改过，请刷新后再试。")
        stock.version += 1

    async def reserve(self, store: str, sku: str, qty: int, at: datetime) -> None:
        await self.flush()
        c = t.inventory.c
        await self._apply(
            store, sku, at, c.on_hand - c.reserved >= qty, reserved=c.reserved + qty,
            refusal=f"门店 {store} 的 {sku} 可用库存不足 {qty} 件。",
        )

    _reserve_many = (
        update(t.inventory)
        .where(and_(_c.store == bindparam("b_store"), _c.sku == bindparam("b_sku"),
                    _c.on_hand - _c.reserved >= bindparam("b_qty")))
        .values(reserved=_c.reserved + bindparam("b_qty"), version=_c.version + 1, updated_at=bindparam("b_at"))
    )

    _hot_reserve_many = HotStatement(_reserve_many, ("b_store", "b_sku", "b_qty", "b_at"))

    async def reserve_many(self, totals: Mapping[tuple[str, str], int], at: datetime) -> None:
        """Reserve units per (store, SKU) in one executemany, in store and SKU order. The plan was made from
        `availability(lock=True)`; if stock moved anyway, OutOfStock is raised and the caller's unit of work
        rolls back (the CHECK constraint refuses any overdraw on every database)."""
        await self.flush()
        if not totals:
            return
        params = [{"b_store": store, "b_sku": sku, "b_qty": qty, "b_at": at} for (store, sku), qty in sorted(totals.items())]
        if self.conn.dialect.name != "sqlite":  # rows locked by availability(lock=True): each update matches
            await self._hot_reserve_many.executemany(self.conn, params)
            return
        result = await self.conn.execute(self._reserve_many, params)
        if result.rowcount != len(params):  # type: ignore[attr-defined]  # SQLite sums an executemany's rows
            raise OutOfStock("库存刚被其他单据占用，本批订单未能分配，请重试。")

    async def deduct(self, store: str, sku: str, qty: int, at: datetime) -> None:
        """Shipped stock leaves on_hand and reserved at `flush`; OutOfStock is raised there if either is short."""
        held, _ = self._deductions.get((store, sku), (0, at))
        self._deductions[store, sku] = (held + qty, at)

    async def release(self, store: str, sku: str, qty: int, at: datetime) -> None:
        await self.flush()
        c = t.inventory.c
        await self._apply(
            store, sku, at, c.reserved >= qty, reserved=c.reserved - qty,
            refusal=f"门店 {store} 的 {sku} 占用数不足 {qty} 件，无法释放。",
        )

    async def flush(self) -> None:
        """Run the waiting deductions, in store and SKU order (so concurrent waves cannot deadlock)."""
        if not self._deductions:
            return
        waiting, self._deductions = self._deductions, {}
        for (store, sku), (qty, at) in sorted(waiting.items()):
            params = {"b_store": store, "b_sku": sku, "b_qty": qty, "b_at": at}
            # on PostgreSQL held back, to go with the shipment's other writes in one statement (held_writes)
            await update_one(self.conn, self._deduct, params, ("inventory", store, sku),
                             OutOfStock(f"门店 {store} 的 {sku} 占用库存不足 {qty} 件，不能出库。"))

    async def _apply(self, store: str, sku: str, at: datetime, condition: Any, *, refusal: str, **values: Any) -> None:
        c = t.inventory.c
        result = await self.conn.execute(
            update(t.inventory)
            .where(and_(c.store == store, c.sku == sku, condition))
            .values(**values, version=c.version + 1, updated_at=at)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise OutOfStock(refusal)
