"""Repositories: map rows to domain aggregates and back. Saves are version-checked (optimistic locking)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.aftersale import AfterSale, Approval
from domain.errors import Conflict, OutOfStock
from domain.inventory import Stock
from domain.order import Order, OrderLine
from domain.users import User
from integrations.db import tables as t

_MUTABLE = ("store", "address", "state", "waybill", "address_change_pending", "updated_at", "shipped_at")


class OrderRepository:
    _columns = (*t.orders.c, t.customers.c.settlement_hold)
    _select = select(*_columns).select_from(
        t.orders.outerjoin(t.customers, t.customers.c.customer_id == t.orders.c.customer_id)
    )

    # the hot path's statements are built once: constructing them per call costs more than running them
    _get = _select.where(t.orders.c.order_no == bindparam("b_order_no"))
    _get_many = _select.where(t.orders.c.order_no.in_(bindparam("b_order_nos", expanding=True))).order_by(
        t.orders.c.order_no
    )
    _save = (
        update(t.orders)
        .where(and_(t.orders.c.order_no == bindparam("b_order_no"), t.orders.c.version == bindparam("b_version")))
        .values({**{name: bindparam(f"b_{name}") for name in _MUTABLE}, "version": t.orders.c.version + 1})
    )

    def __init__(self, conn: AsyncConnection, seen: list[Any]) -> None:
        self.conn = conn
        self.seen = seen

    async def get(self, order_no: str, *, for_update: bool = False) -> Order | None:
        stmt = self._get.with_for_update(of=t.orders) if for_update else self._get
        row = (await self.conn.execute(stmt, {"b_order_no": order_no})).first()
        return self._track(_order_from_row(row) if row is not None else None)

    async def get_many(self, order_nos: Sequence[str]) -> dict[str, Order]:
        """Load and lock (on PostgreSQL) many orders at once, in order_no order so batches cannot deadlock."""
        stmt = self._get_many if self.conn.dialect.name == "sqlite" else self._get_many.with_for_update(of=t.orders)
        rows = await self.conn.execute(stmt, {"b_order_nos": list(order_nos)})
        found = {o.order_no: o for o in map(_order_from_row, rows)}
        self.seen.extend(found.values())
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
        values = _order_values(order)
        values.update(order_no=order.order_no or None, version=1, created_at=order.created_at)
        values.update(
            channel=order.channel,
            external_id=order.external_id,
            customer_id=order.customer_id,
            customer_name=order.customer_name,
            customer_phone=order.customer_phone,
            lines=[_line_json(line) for line in order.lines],
            amount_fen=order.amount_fen,
            parent_no=order.parent_no,
        )
        row_id = (await self.conn.execute(insert(t.orders).values(**values).returning(t.orders.c.id))).scalar_one()
        if not order.order_no:
            order.order_no = f"OB{row_id:08d}"
            await self.conn.execute(
                update(t.orders).where(t.orders.c.id == row_id).values(order_no=order.order_no)
            )
            for event in order.events:
                if hasattr(event, "order_no") and not event.order_no:
                    object.__setattr__(event, "order_no", order.order_no)
        order.version = 1
        self.seen.append(order)
        return order

    async def save(self, order: Order) -> None:
        result = await self.conn.execute(self._save, _save_params(order))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(f"订单 {order.order_no} 刚被其他人修改过，请刷新后再试。")
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

    async def _one(self, stmt: Any) -> Order | None:
        row = (await self.conn.execute(stmt)).first()
        return _order_from_row(row) if row is not None else None

    def _track(self, order: Order | None) -> Order | None:
        if order is not None:
            self.seen.append(order)
        return order


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
    m = row._mapping
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


class InventoryRepository:
    """Reserve, deduct and release are single conditional UPDATEs: correct under concurrency, never negative."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def get(self, store: str, sku: str) -> Stock | None:
        row = (
            await self.conn.execute(
                select(t.inventory).where(and_(t.inventory.c.store == store, t.inventory.c.sku == sku))
            )
        ).first()
        if row is None:
            return None
        m = row._mapping
        return Stock(m["store"], m["sku"], m["on_hand"], m["reserved"], m["version"])

    async def availability(self, skus: Sequence[str]) -> dict[str, dict[str, int]]:
        rows = await self.conn.execute(
            select(t.inventory.c.store, t.inventory.c.sku, t.inventory.c.on_hand - t.inventory.c.reserved)
            .where(t.inventory.c.sku.in_(set(skus)))
            .order_by(t.inventory.c.store)
        )
        out: dict[str, dict[str, int]] = {}
        for store, sku, available in rows:
            out.setdefault(store, {})[sku] = available
        return out

    async def stores(self) -> list[str]:
        rows = await self.conn.execute(select(t.inventory.c.store).distinct().order_by(t.inventory.c.store))
        return [r[0] for r in rows]

    async def save(self, stock: Stock, at: datetime) -> None:
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
        c = t.inventory.c
        await self._apply(
            store, sku, at, c.on_hand - c.reserved >= qty, reserved=c.reserved + qty,
            refusal=f"门店 {store} 的 {sku} 可用库存不足 {qty} 件。",
        )

    async def deduct(self, store: str, sku: str, qty: int, at: datetime) -> None:
        c = t.inventory.c
        await self._apply(
            store, sku, at, and_(c.on_hand >= qty, c.reserved >= qty),
            on_hand=c.on_hand - qty, reserved=c.reserved - qty,
            refusal=f"门店 {store} 的 {sku} 占用库存不足 {qty} 件，不能出库。",
        )

    async def release(self, store: str, sku: str, qty: int, at: datetime) -> None:
        c = t.inventory.c
        await self._apply(
            store, sku, at, c.reserved >= qty, reserved=c.reserved - qty,
            refusal=f"门店 {store} 的 {sku} 占用数不足 {qty} 件，无法释放。",
        )

    async def _apply(self, store: str, sku: str, at: datetime, condition: Any, *, refusal: str, **values: Any) -> None:
        c = t.inventory.c
        result = await self.conn.execute(
            update(t.inventory)
            .where(and_(c.store == store, c.sku == sku, condition))
            .values(**values, version=c.version + 1, updated_at=at)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise OutOfStock(refusal)


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
            aftersale.aftersale_no = f"AS{row_id:06d}"
            await self.conn.execute(
                update(t.aftersales).where(t.aftersales.c.id == row_id).values(aftersale_no=aftersale.aftersale_no)
            )
            for event in aftersale.events:
                if hasattr(event, "aftersale_no") and not event.aftersale_no:
                    object.__setattr__(event, "aftersale_no", aftersale.aftersale_no)
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


class UserRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def get(self, userid: str) -> User | None:
        row = (await self.conn.execute(select(t.users).where(t.users.c.userid == userid))).first()
        return _user(row) if row else None

    async def by_platform_id(self, platform: str, platform_id: str) -> User | None:
        """The user behind a platform's sender id: a DingTalk staffId, else our (WeCom) userid."""
        if platform == "dingtalk":
            return await self.by_dingtalk_id(platform_id)
        return await self.get(platform_id)

    async def by_dingtalk_id(self, staff_id: str) -> User | None:
        row = (await self.conn.execute(select(t.users).where(t.users.c.dingtalk_id == staff_id))).first()
        return _user(row) if row else None

    async def list(self, *, role: str | None = None, store: str | None = None) -> list[User]:
        stmt = select(t.users).where(t.users.c.active.is_(True)).order_by(t.users.c.userid)
        if store:
            stmt = stmt.where(t.users.c.store == store)
        users = [_user(r) for r in await self.conn.execute(stmt)]
        return [u for u in users if role is None or role in u.roles]

    async def set_active(self, userid: str, active: bool) -> None:
        await self.conn.execute(update(t.users).where(t.users.c.userid == userid).values(active=active))

    async def upsert(self, user: User, at: datetime) -> bool:
        """Returns True when the user is new."""
        values = {
            "name": user.name, "roles": sorted(user.roles), "store": user.store,
            "dingtalk_id": user.dingtalk_id, "active": True,
        }
        result = await self.conn.execute(update(t.users).where(t.users.c.userid == user.userid).values(**values))
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return False
        await self.conn.execute(insert(t.users).values(userid=user.userid, created_at=at, **values))
        return True


def _user(row: Any) -> User:
    m = row._mapping
    return User(m["userid"], m["name"], frozenset(m["roles"]), m["store"], m["dingtalk_id"], bool(m["active"]))
