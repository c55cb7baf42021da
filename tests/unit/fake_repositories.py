"""In-memory repositories for tests/unit/fakes.py's FakeUnitOfWork: aggregates kept in dicts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from domain.aftersale import AfterSale
from domain.consistency import Consistency
from domain.customers import FROM_KEYS, NAMED, Customer, Key, KnownCustomer, OtherOrder, customer_number
from domain.errors import OutOfStock
from domain.incidents import Incident
from domain.inventory import Stock
from domain.order import Order
from domain.users import User
from integrations.db.consistency import StoredScore


class FakeOrders:
    def __init__(self, seen: list[Any]) -> None:
        self.rows: dict[str, Order] = {}
        self.seen = seen

    def _track(self, order: Order | None) -> Order | None:
        if order is not None:
            self.seen.append(order)
        return order

    async def get(self, order_no: str, *, for_update: bool = False) -> Order | None:
        return self._track(self.rows.get(order_no))

    async def get_many(self, order_nos: Sequence[str]) -> dict[str, Order]:
        return {no: self.rows[no] for no in sorted(order_nos) if self._track(self.rows.get(no))}

    async def find(self, ref: str) -> Order | None:
        found = self.rows.get(ref) or next((o for o in self.rows.values() if ref in (o.external_id, o.waybill)), None)
        return self._track(found)

    async def by_external_id(self, channel: str, external_id: str) -> Order | None:
        return self._track(next(
            (o for o in self.rows.values() if (o.channel, o.external_id) == (channel, external_id)), None
        ))

    async def children(self, parent_no: str) -> list[Order]:
        return [o for o in self.rows.values() if o.parent_no == parent_no]

    async def add(self, order: Order) -> Order:
        if not order.order_no:
            order.order_no = f"OB{len(self.rows) + 1:08d}"
            for event in order.events:
                if hasattr(event, "order_no") and not event.order_no:
                    object.__setattr__(event, "order_no", order.order_no)
        order.version = 1
        self.rows[order.order_no] = order
        self.seen.append(order)
        return order

    async def add_many(self, orders: Sequence[Order]) -> None:
        for order in orders:
            await self.add(order)

    async def known_external_ids(self, channel: str, external_ids: Sequence[str]) -> set[str]:
        return {o.external_id for o in self.rows.values() if o.channel == channel and o.external_id in external_ids}

    async def save(self, order: Order) -> None:
        order.version += 1

    async def save_many(self, orders: Sequence[Order]) -> None:
        for order in orders:
            order.version += 1


class FakeInventory:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Stock] = {}

    async def reserve_many(self, totals: Mapping[tuple[str, str], int], at: datetime) -> None:
        for (store, sku), qty in sorted(totals.items()):
            await self.reserve(store, sku, qty, at)

    async def get(self, store: str, sku: str) -> Stock | None:
        return self.rows.get((store, sku))

    async def availability(self, skus: Sequence[str]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (store, sku), stock in sorted(self.rows.items()):
            if sku in skus:
                out.setdefault(store, {})[sku] = stock.available
        return out

    async def save(self, stock: Stock, at: datetime) -> None:
        stock.version += 1
        self.rows[stock.store, stock.sku] = stock

    async def reserve(self, store: str, sku: str, qty: int, at: datetime) -> None:
        stock = self._stock(store, sku, lambda s: s.available >= qty, f"门店 {store} 的 {sku} 可用库存不足 {qty} 件。")
        stock.reserved += qty

    async def deduct(self, store: str, sku: str, qty: int, at: datetime) -> None:
        stock = self._stock(store, sku, lambda s: s.on_hand >= qty and s.reserved >= qty, f"{sku} 占用库存不足")
        stock.on_hand -= qty
        stock.reserved -= qty

    async def release(self, store: str, sku: str, qty: int, at: datetime) -> None:
        stock = self._stock(store, sku, lambda s: s.reserved >= qty, f"{sku} 占用数不足")
        stock.reserved -= qty

    def _stock(self, store: str, sku: str, ok: Any, refusal: str) -> Stock:
        stock = self.rows.get((store, sku))
        if stock is None or not ok(stock):
            raise OutOfStock(refusal)
        return stock


class FakeAfterSales:
    def __init__(self, seen: list[Any]) -> None:
        self.rows: dict[str, AfterSale] = {}
        self.seen = seen

    async def get(self, aftersale_no: str) -> AfterSale | None:
        found = self.rows.get(aftersale_no)
        if found is not None:
            self.seen.append(found)
        return found

    async def for_orders(self, order_nos: Sequence[str]) -> list[AfterSale]:
        return [a for a in self.rows.values() if a.order_no in order_nos]

    async def add(self, aftersale: AfterSale) -> AfterSale:
        aftersale.aftersale_no = aftersale.aftersale_no or f"AS{len(self.rows) + 1:06d}"
        self.rows[aftersale.aftersale_no] = aftersale
        self.seen.append(aftersale)
        return aftersale

    async def save(self, aftersale: AfterSale) -> None:
        aftersale.version += 1


class FakeUsers:
    def __init__(self, users: Iterable[User] = ()) -> None:
        self.rows = {u.userid: u for u in users}

    async def get(self, userid: str) -> User | None:
        return self.rows.get(userid)

    async def by_platform_id(self, platform: str, platform_id: str) -> User | None:
        if platform == "dingtalk":
            return next((u for u in self.rows.values() if u.dingtalk_id == platform_id), None)
        return self.rows.get(platform_id)

    async def list(self, *, role: str | None = None, store: str | None = None) -> list[User]:
        return [u for _, u in sorted(self.rows.items())
                if u.active and (role is None or role in u.roles) and (not store or u.store == store)]

    async def set_active(self, userid: str, active: bool) -> None:
        self.rows[userid] = replace(self.rows[userid], active=active)


class FakeInbox:
    """Messages the edge stored; a claim succeeds once per message."""

    def __init__(self) -> None:
        self.stored: set[tuple[str, str]] = set()
        self.processed: set[tuple[str, str]] = set()

    async def claim(self, platform: str, message_id: str, at: datetime) -> bool:
        key = (platform, message_id)
        if key not in self.stored or key in self.processed:
            return False
        self.processed.add(key)
        return True


class FakeIncidents:
    def __init__(self) -> None:
        self.rows: dict[int, Incident] = {}

    async def open(
        self, *, kind: str, message: str, at: datetime, order_no: str | None = None,
        sku: str | None = None, store: str | None = None, severity: str = "warning",
    ) -> None:
        await self.add_many([Incident(kind, message, at, order_no, sku, store, severity)])

    async def add_many(self, incidents: Sequence[Incident]) -> None:
        for incident in incidents:
            stored = replace(incident, id=len(self.rows) + 1)
            self.rows[stored.id] = stored

    async def get(self, incident_id: int) -> Incident | None:
        found = self.rows.get(incident_id)
        return replace(found) if found else None  # a copy, as a database read is

    async def list_open(self, *, kinds: Sequence[str] = (), order_no: str | None = None) -> list[Incident]:
        return [replace(i) for i in sorted(self.rows.values(), key=lambda i: (i.opened_at, i.id), reverse=True)
                if i.resolved_at is None and (not kinds or i.kind in kinds) and (not order_no or i.order_no == order_no)]

    async def count_open(self) -> int:
        return len(await self.list_open())

    async def orders_with_open(self, kind: str, order_nos: Sequence[str]) -> set[str]:
        return {i.order_no for i in await self.list_open(kinds=(kind,)) if i.order_no in order_nos}  # type: ignore[misc]

    async def unacknowledged_since(self, before: datetime) -> list[Incident]:
        return [replace(i) for _, i in sorted(self.rows.items())
                if i.acknowledged_at is None and i.resolved_at is None and i.opened_at < before]

    async def acknowledge(self, incident: Incident) -> bool:
        stored = self.rows[incident.id]
        if stored.acknowledged_at is not None or stored.resolved_at is not None:
            return False
        self.rows[incident.id] = replace(incident)
        return True

    async def resolve(self, incident: Incident) -> bool:
        if self.rows[incident.id].resolved_at is not None:
            return False
        self.rows[incident.id] = replace(incident)
        return True


class FakeCustomerKeys:
    def __init__(self) -> None:
        self.rows: dict[Key, str] = {}  # in insertion order, like the table's ids

    async def owners(self, keys: Sequence[Key]) -> dict[Key, str]:
        return {k: self.rows[k] for k in keys if k in self.rows}

    async def add(self, owned: Sequence[tuple[Key, str]], at: datetime) -> None:
        for key, cid in owned:
            assert key not in self.rows, f"key {key} names {self.rows[key]} already"  # the unique (kind, value)
            self.rows[key] = cid

    async def of_customers(self, customer_ids: Sequence[str], kind: str | None = None) -> dict[str, list[Key]]:
        found: dict[str, list[Key]] = {}
        for key, cid in self.rows.items():
            if cid in customer_ids and (kind is None or key[0] == kind):
                found.setdefault(cid, []).append(key)
        return found

    async def move(self, from_customer: str, to_customer: str) -> list[Key]:
        moved = [k for k, cid in self.rows.items() if cid == from_customer]
        for key in moved:
            self.rows[key] = to_customer
        return moved


class FakeCustomers:
    def __init__(self, orders: FakeOrders | None = None, keys: FakeCustomerKeys | None = None) -> None:
        self.rows: dict[str, Customer] = {}
        self.origin: dict[str, str] = {}
        self.merged_into: dict[str, str] = {}
        self.first_names: dict[str, str] = {}  # the name each customer was created with
        self.numbers = 0
        self.orders = orders
        self.keys = keys

    async def create(self, customers: Sequence[Customer], origin: str, at: datetime) -> None:
        for customer in customers:
            assert customer.customer_id not in self.rows
            self.rows[customer.customer_id] = replace(customer)
            self.origin[customer.customer_id] = origin
            self.first_names[customer.customer_id] = customer.name

    async def new_ids(self, count: int, at: datetime) -> list[str]:
        self.numbers += count
        return [customer_number(n) for n in range(self.numbers - count + 1, self.numbers + 1)]

    async def known(self, customer_ids: Sequence[str]) -> dict[str, KnownCustomer]:
        found = {}
        for cid in set(customer_ids) & set(self.rows):
            origin = self.origin.get(cid, NAMED)
            cards = {v for (kind, v), owner in (self.keys.rows if self.keys else {}).items()
                     if owner == cid and kind == "member_card"}
            age = int(cid[1:]) if origin == FROM_KEYS else 0
            found[cid] = KnownCustomer(cid, self.rows[cid].name, origin, age, cards, self.merged_into.get(cid))
        return found

    async def merge(self, merged: str, survivor: str, at: datetime) -> int:
        moved = 0
        for order in (self.orders.rows.values() if self.orders else ()):
            if order.customer_id == merged:
                order.customer_id, moved = survivor, moved + 1
        self.merged_into[merged] = survivor
        if not self.rows[survivor].name:
            self.rows[survivor].name = self.rows[merged].name
        return moved

    async def other_orders(self, customer_id: str, but: str, limit: int) -> tuple[int, list[OtherOrder]]:
        mine = [o for o in (self.orders.rows.values() if self.orders else ())
                if o.customer_id == customer_id and o.order_no != but and o.parent_no is None]
        mine.sort(key=lambda o: o.created_at, reverse=True)
        return len(mine), [OtherOrder(o.order_no, o.channel, o.state) for o in mine[:limit]]

    async def find(self, ref: str) -> Customer | None:
        found = next((c for cid, c in self.rows.items() if cid.upper() == ref.upper()), None)
        return replace(found) if found else None

    async def add_missing(self, customers: Sequence[Customer], at: datetime) -> None:
        for customer in customers:
            if customer.customer_id not in self.rows:
                await self.create([customer], NAMED, at)

    async def hold(self, reasons: Mapping[str, str], at: datetime) -> None:
        for cid, reason in reasons.items():
            self.rows.setdefault(cid, Customer(cid))
            self.rows[cid].settlement_hold, self.rows[cid].hold_reason = True, reason

    async def release(self, customer_id: str, at: datetime) -> bool:
        customer = self.rows[customer_id]
        if not customer.settlement_hold:
            return False
        customer.settlement_hold, customer.hold_reason = False, ""
        return True

    async def held(self) -> list[Customer]:
        return [replace(c) for c in self.rows.values() if c.settlement_hold]

    async def set_sms_opt_out(self, customer_id: str, opt_out: bool, at: datetime) -> None:
        self.rows[customer_id].sms_opt_out = opt_out

class FakeConsistency:
    """Scores in memory; orderbot's side read from the fake orders (top-level orders only)."""

    def __init__(self, orders: FakeOrders) -> None:
        self.orders = orders
        self.rows: dict[tuple[str, datetime], tuple[Any, datetime | None]] = {}

    async def held(self, channel: str, external_ids: Sequence[str]) -> set[str]:
        mine = {o.external_id for o in self.orders.rows.values() if o.channel == channel and not o.parent_no}
        return mine & set(external_ids)

    async def count(self, channel: str, start: datetime, end: datetime) -> int:
        return sum(1 for o in self.orders.rows.values()
                   if o.channel == channel and not o.parent_no and start <= o.created_at < end)

    async def previous(self, kind: str, before: datetime) -> StoredScore | None:
        older = sorted(k for k in self.rows if k[0] == kind and k[1] < before)
        return self._stored(older[-1]) if older else None

    async def latest(self) -> dict[str, StoredScore]:
        found: dict[str, StoredScore] = {}
        for key in sorted(self.rows, key=lambda k: k[1]):
            found[key[0]] = self._stored(key)
        return found

    async def save(self, result: Consistency, low_since: datetime | None, at: datetime) -> None:
        self.rows[(result.window.kind, result.window.start)] = (result, low_since)

    def _stored(self, key: tuple[str, datetime]) -> StoredScore:
        result, low_since = self.rows[key]
        return StoredScore(key[0], result.window.start, result.window.end, result.score, low_since)
