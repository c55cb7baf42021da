"""Orders in the database: loaded and saved whole, each save checked against the row version."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.errors import Conflict
from domain.order import Order, OrderLine
from integrations.db import tables as t
from integrations.db.engine import HotStatement, in_list
from integrations.db.held_writes import update_one
from integrations.db.numbering import assign_number, assign_numbers, name, next_ids

_MUTABLE = ("store", "address", "state", "waybill", "address_change_pending", "updated_at", "shipped_at")
_NEW_KEYS = ("order_no", "version", "created_at", "channel", "external_id", "customer_id", "customer_name",
             "customer_phone", "lines", "amount_fen", "parent_no", *_MUTABLE)


class OrderRepository:
    _columns = (*t.orders.c, t.customers.c.settlement_hold)
    _select = select(*_columns).select_from(
        t.orders.outerjoin(t.customers, t.customers.c.customer_id == t.orders.c.customer_id)
    )

    # the hot path's statements are built once: constructing them per call costs more than running them
    _get = _select.where(t.orders.c.order_no == bindparam("b_order_no"))
    _save = (
        update(t.orders)
        .where(and_(t.orders.c.order_no == bindparam("b_order_no"), t.orders.c.version == bindparam("b_version")))
        .values({**{name: bindparam(f"b_{name}") for name in _MUTABLE}, "version": t.orders.c.version + 1})
    )

    _hot_get = HotStatement(_get, read=True)
    _hot_get_for_update = HotStatement(_get.with_for_update(of=t.orders))
    _hot_save = HotStatement(_save)
    _hot_get_many = in_list(  # SQLite compiles no FOR UPDATE: its one writer locks the file
        _select.order_by(t.orders.c.order_no).with_for_update(of=t.orders), t.orders.c.order_no, "b_order_nos"
    )

    def __init__(self, conn: AsyncConnection, seen: list[Any]) -> None:
        self.conn = conn
        self.seen = seen
        # the orders this unit of work has locked (loaded FOR UPDATE) or written (its version-checked UPDATE locks
        # the row when it runs): another read of them would find the same row, and take no lock it lacks
        self._owned: dict[str, Order] = {}

    async def get(self, order_no: str, *, for_update: bool = False) -> Order | None:
        stmt = self._hot_get_for_update if for_update else self._hot_get
        row = await stmt.fetchrow(self.conn, {"b_order_no": order_no})
        order = self._track(_order_from_mapping(row) if row is not None else None)
        if order is not None and for_update:
            self._owned[order.order_no] = order
        return order

    async def get_many(self, order_nos: Sequence[str]) -> dict[str, Order]:
        """Load and lock (on PostgreSQL) many orders at once, in order_no order so batches cannot deadlock. When this
        unit of work has locked or written them all already (a reaction reads the orders its command moved), they
        are the ones it has and nothing is read."""
        if all(no in self._owned for no in order_nos):
            return {no: self._owned[no] for no in sorted(order_nos)}
        rows = await self._hot_get_many.fetch(self.conn, {"b_order_nos": list(order_nos)})
        found = {o.order_no: o for o in map(_order_from_mapping, rows)}
        self.seen.extend(found.values())
        self._owned.update(found)
        return found

    async def find(self, ref: str) -> Order | None:
        """An order named by our order_no, a channel's external id, or its waybill."""
        order = await self.get(ref)
        if order is None:
            stmt = self._select.where(
                or_(t.orders.c.external_id == ref, t.orders.c.waybill == ref)
            ).order_by(t.orders.c.id).limit(1)
            order = self._track(await self._one(stmt))
        return order

    async def by_external_id(self, channel: str, external_id: str) -> Order | None:
        stmt = self._select.where(
            and_(t.orders.c.channel == channel, t.orders.c.external_id == external_id)
        )
        return self._track(await self._one(stmt))

    async def children(self, parent_no: str) -> list[Order]:
        rows = await self.conn.execute(
            self._select.where(t.orders.c.parent_no == parent_no).order_by(t.orders.c.id)
        )
        return [self._track(_order_from_row(r)) for r in rows]  # type: ignore[misc]

    async def count_by_state(self, store: str | None = None) -> dict[str, int]:
        stmt = select(t.orders.c.state, func.count()).group_by(t.orders.c.state)
        if store:
            stmt = stmt.where(t.orders.c.store == store)
        return {state: n for state, n in await self.conn.execute(stmt)}

    async def add(self, order: Order) -> Order:
        """Insert; an empty order_no becomes one derived from the row id (short enough to type)."""
        values = _new_row(order)
        row_id = (await self.conn.execute(insert(t.orders).values(**values).returning(t.orders.c.id))).scalar_one()
        if not order.order_no:
            await assign_number(self.conn, t.orders, row_id, order, "order_no", order_number(row_id))
        order.version = 1
        self.seen.append(order)
        self._owned[order.order_no] = order
        return order

    _known = select(t.orders.c.external_id).where(
        t.orders.c.channel == bindparam("b_channel"), t.orders.c.external_id.in_(bindparam("b_ids", expanding=True))
    )
    # RETURNING matched by key, not by position: asking SQLAlchemy to keep the parameters' order makes it insert
    # row by row on SQLite (1,000 statements for a batch instead of one)
    _insert_many = insert(t.orders).returning(t.orders.c.id, t.orders.c.channel, t.orders.c.external_id)

    _hot_insert_numbered = HotStatement(insert(t.orders), (*_NEW_KEYS, "id"))

    async def known_external_ids(self, channel: str, external_ids: Sequence[str]) -> set[str]:
        """Which of a channel's external ids are orders already (a batch import's duplicates, in one query)."""
        if not external_ids:
            return set()
        if self.conn.dialect.name == "postgresql":
            # planned for the table as it is now: a plan cached while the table was near empty scans it whole
            # for each of a batch's thousand ids (seen: 23 s of a 60,000-row import's 40)
            await self.conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
        rows = await self.conn.execute(self._known, {"b_channel": channel, "b_ids": list(external_ids)})
        return set(rows.scalars())

    async def add_many(self, orders: Sequence[Order]) -> None:
        """Insert new orders in one statement; each is numbered from its row id, as `add` numbers one."""
        if not orders:
            return
        if self.conn.dialect.name == "postgresql":
            numbered = list(zip(await next_ids(self.conn, t.orders, len(orders)), orders, strict=True))
            for row_id, order in numbered:
                name(order, "order_no", order_number(row_id))
            await self._hot_insert_numbered.executemany(
                self.conn, [{**_new_row(order), "id": row_id} for row_id, order in numbered]
            )
        else:
            result = await self.conn.execute(self._insert_many, [_new_row(o) for o in orders])
            ids = {(channel, external_id): row_id for row_id, channel, external_id in result}
            await assign_numbers(self.conn, t.orders, [(ids[o.channel, o.external_id], o) for o in orders],
                                 "order_no", order_number)
        for order in orders:
            order.version = 1
            self._owned[order.order_no] = order
        self.seen.extend(orders)

    async def save(self, order: Order) -> None:
        """Checked against the version it was loaded with. On PostgreSQL held back, to go with the audit and event
        rows of the change (held_writes), so a version conflict may surface at the unit of work's next statement."""
        await update_one(self.conn, self._hot_save, _save_params(order), ("orders", order.order_no),
                         Conflict(f"订单 {order.order_no} 刚被其他人修改过，请刷新后再试。"))
        self._owned[order.order_no] = order
        order.version += 1

    async def save_many(self, orders: Sequence[Order]) -> None:
        """One executemany. PostgreSQL rows are locked by get_many; SQLite reports the summed row count."""
        if not orders:
            return
        result = await self.conn.execute(self._save, [_save_params(o) for o in orders])
        if self.conn.dialect.supports_sane_multi_rowcount and result.rowcount != len(orders):  # type: ignore[attr-defined]
            raise Conflict("有订单刚被其他人修改过，本批未提交，请刷新后再试。")
        for order in orders:
            order.version += 1
            self._owned[order.order_no] = order

    async def _one(self, stmt: Any) -> Order | None:
        row = (await self.conn.execute(stmt)).first()
        return _order_from_row(row) if row is not None else None

    def _track(self, order: Order | None) -> Order | None:
        if order is not None:
            self.seen.append(order)
        return order


def order_number(row_id: int) -> str:
    return f"OB{row_id:08d}"


def _new_row(order: Order) -> dict[str, Any]:
    values = _order_values(order)
    values.update(
        order_no=order.order_no or None,
        version=1,
        created_at=order.created_at,
        channel=order.channel,
        external_id=order.external_id,
        customer_id=order.customer_id,
        customer_name=order.customer_name,
        customer_phone=order.customer_phone,
        lines=[_line_json(line) for line in order.lines],
        amount_fen=order.amount_fen,
        parent_no=order.parent_no,
    )
    return values


def _line_json(line: OrderLine) -> dict[str, Any]:
    return {"sku": line.sku, "name": line.name, "qty": line.qty, "unit_price_fen": line.unit_price_fen}


def _save_params(order: Order) -> dict[str, Any]:
    params = {f"b_{name}": value for name, value in _order_values(order).items()}
    params.update(b_version=order.version, b_order_no=order.order_no)
    return params


def _order_values(order: Order) -> dict[str, Any]:
    return {
        "store": order.store,
        "address": order.address,
        "state": order.state,
        "waybill": order.waybill,
        "address_change_pending": order.address_change_pending,
        "updated_at": order.updated_at or order.created_at,
        "shipped_at": order.shipped_at,
    }


def _order_from_row(row: Any) -> Order:
    return _order_from_mapping(row._mapping)


def _order_from_mapping(m: Any) -> Order:
    """From a Row's mapping or an asyncpg Record: both are read by column name."""
    return Order(
        order_no=m["order_no"],
        channel=m["channel"],
        external_id=m["external_id"],
        customer_id=m["customer_id"],
        customer_name=m["customer_name"],
        customer_phone=m["customer_phone"],
        address=m["address"],
        lines=[OrderLine(**line) for line in m["lines"]],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        shipped_at=m["shipped_at"],
        store=m["store"],
        state=m["state"],
        waybill=m["waybill"],
        parent_no=m["parent_no"],
        address_change_pending=bool(m["address_change_pending"]),
        settlement_hold=bool(m["settlement_hold"]),
        version=m["version"],
    )
