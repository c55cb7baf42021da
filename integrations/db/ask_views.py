"""Read models for plain questions (handlers/chat_ask.py, handlers/ask_cases.py) and the names the understander
learns from the data.

Counts are of orders as people count them: a split order's parent (state split, no store) is left out, its
child orders are counted where they sit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from integrations.db import tables as t

_o, _a, _i, _s = t.orders.c, t.audit_log.c, t.inventory.c, t.skus.c
VOCABULARY_CUSTOMERS = 5000  # customer names the understander knows (the most recently changed)


@dataclass(frozen=True)
class OrderFilter:
    stores: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    channel: str = ""
    customer: str = ""
    since: datetime | None = None
    until: datetime | None = None
    time_field: str = "created"  # created | shipped | updated
    address_changed: bool = False  # changed (ok) within [since, until), when given
    unchanged_before: datetime | None = None  # last changed before this


@dataclass(frozen=True)
class OrderLine:
    order_no: str
    state: str
    store: str | None
    channel: str
    customer_name: str
    amount_fen: int
    updated_at: datetime


@dataclass(frozen=True)
class OrderFigures:
    total: int
    amount_fen: int
    by_state: dict[str, int]
    by_store: dict[str, int]
    rows: list[OrderLine] = field(default_factory=list)


@dataclass(frozen=True)
class StockRow:
    store: str
    sku: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True)
class AftersaleRow:
    aftersale_no: str
    order_no: str
    kind: str
    state: str
    amount_fen: int
    approvals: list[dict[str, str]]
    rejected_by: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Vocabulary:
    store_codes: list[str]
    skus: dict[str, str]
    staff: dict[str, str]
    customers: dict[str, str]


class AskViews:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    def _where(self, f: OrderFilter) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = [not_(and_(_o.state == "split", _o.store.is_(None)))]
        if f.stores:
            where.append(_o.store.in_(f.stores))
        if f.states:
            where.append(_o.state.in_(f.states))
        if f.channel:
            where.append(_o.channel == f.channel)
        if f.customer:
            where.append(_o.customer_id == f.customer)
        if f.unchanged_before is not None:
            where.append(_o.updated_at < f.unchanged_before)
        if f.address_changed:
            changed = select(_a.entity_id).where(_a.entity == "order", _a.action == "change_address", _a.outcome == "ok")
            if f.since is not None:
                changed = changed.where(_a.at >= f.since)
            if f.until is not None:
                changed = changed.where(_a.at < f.until)
            where.append(_o.order_no.in_(changed))
        elif f.since is not None or f.until is not None:
            column = {"created": _o.created_at, "shipped": _o.shipped_at, "updated": _o.updated_at}[f.time_field]
            if f.since is not None:
                where.append(column >= f.since)
            if f.until is not None:
                where.append(column < f.until)
        return where

    async def orders(self, f: OrderFilter, limit: int) -> OrderFigures:
        """How many, their amount, by state and by store, and the `limit` most recently changed."""
        where = self._where(f)
        by_state: dict[str, int] = {}
        by_store: dict[str, int] = {}
        total = amount = 0
        for state, store, count, fen in await self.conn.execute(
            select(_o.state, _o.store, func.count(), func.coalesce(func.sum(_o.amount_fen), 0))
            .where(*where).group_by(_o.state, _o.store)
        ):
            by_state[state] = by_state.get(state, 0) + int(count)
            by_store[store or ""] = by_store.get(store or "", 0) + int(count)
            total += int(count)
            amount += int(fen)
        rows: list[OrderLine] = []
        if limit and total:
            rows = [
                OrderLine(r.order_no, r.state, r.store, r.channel, r.customer_name, int(r.amount_fen), r.updated_at)
                for r in await self.conn.execute(
                    select(_o.order_no, _o.state, _o.store, _o.channel, _o.customer_name, _o.amount_fen,
                           _o.updated_at)
                    .where(*where).order_by(_o.updated_at.desc(), _o.id.desc()).limit(limit)
                )
            ]
        return OrderFigures(total, amount, by_state, by_store, rows)

    async def stock(self, skus: Sequence[str], stores: Sequence[str] = ()) -> list[StockRow]:
        stmt = select(_i.store, _i.sku, _i.on_hand, _i.reserved).where(_i.sku.in_(list(skus)))
        if stores:
            stmt = stmt.where(_i.store.in_(list(stores)))
        rows = await self.conn.execute(stmt.order_by(_i.sku, _i.store))
        return [StockRow(r.store, r.sku, int(r.on_hand), int(r.reserved)) for r in rows]

    async def find_skus(self, text: str, limit: int = 10) -> dict[str, str]:
        """SKUs whose code is `text` (any case) or whose name contains it: sku -> name."""
        needle = text.strip().lower()
        found: dict[str, str] = {}
        for sku, name in await self.conn.execute(
            select(_s.sku, _s.name).where(or_(func.lower(_s.sku) == needle, func.lower(_s.name).contains(needle,
                                                                                                     autoescape=True)))
            .order_by(_s.sku).limit(limit)
        ):
            found[sku] = name
        if not found:
            for (sku,) in await self.conn.execute(
                select(_i.sku).where(func.lower(_i.sku) == needle).distinct().limit(limit)
            ):
                found[sku] = ""
        return found

    async def aftersales(self, *, states: Sequence[str] = (), kinds: Sequence[str] = (),
                         changed_since: datetime | None = None) -> list[AftersaleRow]:
        a = t.aftersales.c
        stmt = select(a.aftersale_no, a.order_no, a.kind, a.state, a.amount_fen, a.approvals, a.rejected_by,
                      a.created_at, a.updated_at)
        if states:
            stmt = stmt.where(a.state.in_(list(states)))
        if kinds:
            stmt = stmt.where(a.kind.in_(list(kinds)))
        if changed_since is not None:
            stmt = stmt.where(a.updated_at >= changed_since)
        rows = await self.conn.execute(stmt.order_by(a.updated_at.desc(), a.id.desc()))
        return [AftersaleRow(r.aftersale_no, r.order_no, r.kind, r.state, int(r.amount_fen), list(r.approvals or []),
                             r.rejected_by, r.created_at, r.updated_at) for r in rows]

    async def order_stores(self, order_nos: Sequence[str]) -> dict[str, str | None]:
        if not order_nos:
            return {}
        rows = await self.conn.execute(select(_o.order_no, _o.store).where(_o.order_no.in_(set(order_nos))))
        return {r.order_no: r.store for r in rows}

    async def vocabulary(self) -> Vocabulary:
        """The names the understander knows: store codes in use, SKUs and part names, staff, customers."""
        codes: set[str] = set()
        for column in (_i.store, t.users.c.store, _o.store):
            codes |= {c for (c,) in await self.conn.execute(select(column).where(column.is_not(None)).distinct())}
        skus = {sku: name for sku, name in await self.conn.execute(select(_s.sku, _s.name))}
        for (sku,) in await self.conn.execute(select(_i.sku).distinct()):
            skus.setdefault(sku, "")
        u = t.users.c
        staff = {r.userid: r.name for r in await self.conn.execute(select(u.userid, u.name).where(u.active.is_(True)))}
        c = t.customers.c
        customers = {r.customer_id: r.name for r in await self.conn.execute(
            select(c.customer_id, c.name).where(c.name != "").order_by(c.updated_at.desc()).limit(VOCABULARY_CUSTOMERS)
        )}
        return Vocabulary(sorted(codes), skus, staff, customers)
