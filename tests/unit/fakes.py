"""An in-memory unit of work (cosmicpython's FakeUnitOfWork): handler tests without a database, in milliseconds.

It satisfies handlers.unit_of_work.AbstractUnitOfWork; what it records (audit rows, outbox rows, commits) is
public, so a test asserts the outcome a user would notice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from domain.arbitration import CourierReport
from domain.event_wire import WireEvent
from domain.events import Change, Event
from domain.outbox import OutboxMessage
from domain.safety_stock import DemandSignals, Evaluation, PastEvaluation, Sale
from domain.stores import Store
from domain.users import User
from handlers.unit_of_work import AbstractUnitOfWork
from integrations.db.health_views import (
    Anomalies,
    FirstContact,
    HealthFigures,
    Processing,
    Pushes,
    RangeFigures,
)
from integrations.db.skus import SkuRegistration
from integrations.db.stock_views import NOT_SOLD, StockTotal
from integrations.db.tracking import TrackedOrder
from integrations.db.views import ApprovalRow, BookedBill, DaySummary, OrderAge, OrderSkus, WarehouseRow
from tests.unit.fake_repositories import (
    FakeAfterSales,
    FakeConsistency,
    FakeCustomerKeys,
    FakeCustomers,
    FakeInbox,
    FakeIncidents,
    FakeInventory,
    FakeOrders,
    FakeUsers,
)


class FakeSkus:
    def __init__(self) -> None:
        self.rows: dict[str, SkuRegistration] = {}
        self.signals: list[dict[str, Any]] = []
        self.evaluations: list[tuple[Evaluation, datetime, int | None]] = []

    async def register(self, sku: str, registration: SkuRegistration, at: datetime) -> None:
        self.rows[sku] = registration

    async def registered(self) -> dict[str, SkuRegistration]:
        return dict(self.rows)

    async def record_signal(self, *, sku: str, channel: str, kind: str, value: int, at: datetime) -> None:
        self.signals.append({"sku": sku, "channel": channel, "kind": kind, "value": value, "at": at})

    async def record_evaluation(self, evaluation: Evaluation, at: datetime, *, suggested: int | None) -> None:
        self.evaluations.append((evaluation, at, suggested))


class FakeFreezes:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], str | None] = {}  # (sku, channel) -> lifted_by, None while in force

    async def active(self, skus: Sequence[str] | None = None) -> set[tuple[str, str]]:
        return {key for key, lifted in self.rows.items() if lifted is None and (skus is None or key[0] in skus)}

    async def add(self, sku: str, channels: Iterable[str], *, reason: str, at: datetime) -> None:
        self.rows.update({(sku, channel): None for channel in channels})

    async def lift(self, sku: str, channels: Sequence[str], *, by: str, at: datetime) -> None:
        self.rows.update({(sku, channel): by for channel in channels})


class FakeTracks:
    def __init__(self) -> None:
        self.rows: dict[str, tuple[CourierReport, str]] = {}

    async def record(self, tracks: Sequence[tuple[CourierReport, str]], at: datetime) -> None:
        self.rows.update({report.waybill: (report, carrier) for report, carrier in tracks})

    async def tracked_page(self, after: str, size: int) -> list[tuple[TrackedOrder, CourierReport]]:
        return []

    async def of_waybill(self, waybill: str) -> list[tuple[TrackedOrder, CourierReport]]:
        return []

    async def untracked(self, cutoff: datetime, size: int) -> list[TrackedOrder]:
        return []

    async def exception_reporters(self, order_nos: Sequence[str]) -> dict[str, str]:
        return {}


class FakeMarks:
    def __init__(self) -> None:
        self.keys: set[str] = set()

    async def once(self, keys: Sequence[str], at: datetime) -> set[str]:
        fresh = set(keys) - self.keys
        self.keys |= fresh
        return fresh


class FakeOutboxKeys:
    def __init__(self, outbox: list[dict[str, Any]]) -> None:
        self.outbox = outbox

    async def taken(self, keys: Sequence[str]) -> set[str]:
        return {row["dedup_key"] for row in self.outbox if row.get("dedup_key") in keys}


class FakeHealth:
    """The health dashboard's figures of an empty day (the SQL read model is tested on real databases)."""

    async def figures(self, starts: Mapping[str, datetime], now: datetime) -> HealthFigures:
        empty = RangeFigures(Processing(None, 0), Anomalies(0, 0, 0), FirstContact([]), {}, Pushes({}), [])
        return HealthFigures(now, {key: empty for key in starts}, [], 0, None)


class FakeViews:
    """The read models computed from the fake repositories."""

    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow
        self.bills: dict[str, list[BookedBill]] = {}  # order_no → what K3 holds (set by a test)

    async def k3_bills(self, order_no: str) -> list[BookedBill]:
        return list(self.bills.get(order_no, []))

    async def warehouse_orders(self, store: str, states: Sequence[str], limit: int) -> tuple[int, list[WarehouseRow]]:
        orders = [o for o in self.uow.orders.rows.values() if o.store == store and o.state in states]
        rows = [WarehouseRow(o.order_no, o.state, o.waybill, o.address_change_pending, o.created_at, None) for o in orders]
        return len(rows), rows[:limit]

    async def pending_approvals(self) -> list[ApprovalRow]:
        return [ApprovalRow(a.aftersale_no, a.kind, a.amount_fen, a.order_no, a.created_at)
                for a in self.uow.aftersales.rows.values() if a.state == "pending_approval"]

    async def address_changes(self) -> list[OrderAge]:
        return [OrderAge(o.order_no, o.state, o.store, o.updated_at or o.created_at)
                for o in self.uow.orders.rows.values() if o.address_change_pending]

    async def overdue_orders(self, sla_minutes: Mapping[str, int], now: datetime) -> list[OrderAge]:
        return [OrderAge(o.order_no, o.state, o.store, o.updated_at or o.created_at)
                for no, o in sorted(self.uow.orders.rows.items())
                if o.state in sla_minutes and (o.updated_at or o.created_at) < now - timedelta(minutes=sla_minutes[o.state])]

    async def top_level_order_skus(self, order_nos: Sequence[str]) -> list[OrderSkus]:
        return [OrderSkus(o.order_no, o.channel, o.store, tuple(line.sku for line in o.lines))
                for no, o in sorted(self.uow.orders.rows.items()) if no in order_nos and o.parent_no is None]

    async def summary(self, since: datetime) -> DaySummary:
        orders = self.uow.orders.rows.values()
        by_state: dict[str, int] = {}
        for o in orders:
            if (o.updated_at or o.created_at) >= since:
                by_state[o.state] = by_state.get(o.state, 0) + 1
        jumps = sum(1 for a in self.uow.audit_rows if a["outcome"] == "refused" and a["at"] >= since
                    and (a.get("detail") or {}).get("code") == "illegal_transition")
        return DaySummary(sum(1 for o in orders if o.created_at >= since), by_state,
                          await self.uow.incidents.count_open(), jumps)


class FakeStockViews:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow

    async def sales(self, since: datetime, until: datetime) -> list[Sale]:
        return [Sale(line.sku, o.channel, line.qty, o.created_at) for o in self.uow.orders.rows.values()
                if o.parent_no is None and o.state not in NOT_SOLD and since < o.created_at <= until for line in o.lines]

    async def stock_totals(self) -> dict[str, StockTotal]:
        totals: dict[str, StockTotal] = {}
        for (_, sku), s in sorted(self.uow.inventory.rows.items()):
            have = totals.get(sku, StockTotal(0, 0))
            totals[sku] = StockTotal(have.on_hand + s.on_hand, have.available + s.available)
        return totals

    async def signals(self, now: datetime, fresh_minutes: int, skus: Sequence[str]) -> dict[str, DemandSignals]:
        return {sku: DemandSignals() for sku in skus}

    async def evaluations(self, since: datetime, until: datetime, skus: Sequence[str]) -> dict[str, tuple[PastEvaluation, ...]]:
        found: dict[str, list[PastEvaluation]] = {}
        for evaluation, at, _ in reversed(self.uow.skus.evaluations):
            if evaluation.sku in skus and since <= at < until:
                found.setdefault(evaluation.sku, []).append(PastEvaluation(at, evaluation.over))
        return {sku: tuple(items) for sku, items in found.items()}


class FakeStores:
    def __init__(self) -> None:
        self.by_code: dict[str, Store] = {}

    async def get(self, code: str) -> Store | None:
        return self.by_code.get(code)

    async def list(self) -> list[Store]:
        return [self.by_code[code] for code in sorted(self.by_code)]

    async def save(self, store: Store, at: datetime) -> Store | None:
        before = self.by_code.get(store.code)
        self.by_code[store.code] = store
        return before


class FakeUnitOfWork:
    def __init__(self, users: Iterable[User] = ()) -> None:
        self.seen: list[Any] = []
        self.orders = FakeOrders(self.seen)
        self.inventory = FakeInventory()
        self.aftersales = FakeAfterSales(self.seen)
        self.users = FakeUsers(users)
        self.stores = FakeStores()
        self.inbox = FakeInbox()
        self.incidents = FakeIncidents()
        self.customer_keys = FakeCustomerKeys()
        self.customers = FakeCustomers(self.orders, self.customer_keys)
        self.skus = FakeSkus()
        self.freezes = FakeFreezes()
        self.tracks = FakeTracks()
        self.marks = FakeMarks()
        self.audit_rows: list[dict[str, Any]] = []
        self.stored_events: list[WireEvent] = []
        self.outbox: list[dict[str, Any]] = []
        self.receivables: list[dict[str, Any]] = []
        self.outbox_keys = FakeOutboxKeys(self.outbox)
        self.views = FakeViews(self)
        self.stock_views = FakeStockViews(self)
        self.consistency = FakeConsistency(self.orders)
        self.health = FakeHealth()
        self.commits = 0
        self.raised: list[Event] = []
        self.actor, self.via = "system", "system"

    async def __aenter__(self) -> FakeUnitOfWork:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def commit(self) -> None:
        self.commits += 1

    async def rollback(self) -> None:
        return None

    def acting(self, actor: str, via: str) -> None:
        self.actor, self.via = actor, via

    def emit(self, *events: Event) -> None:
        self.raised.extend(events)

    async def record(self, changes: list[Change], at: datetime) -> None:
        await self.audit_many([
            {"at": at, "actor": c.actor or self.actor, "via": c.via or self.via, "entity": c.entity,
             "entity_id": c.entity_id, "action": c.action, "from_state": c.from_state, "to_state": c.to_state,
             "outcome": c.outcome, "reason": c.reason, "detail": dict(c.detail) if c.detail is not None else None}
            for c in changes
        ])

    async def store_events(self, events: list[WireEvent], at: datetime) -> None:
        self.stored_events.extend(events)

    async def log(self, changes: list[Change], events: list[WireEvent], at: datetime) -> None:
        await self.record(changes, at)
        await self.store_events(events, at)

    def pop_events(self) -> list[Event]:
        events: list[Event] = self.raised
        self.raised = []
        for agg in self.seen:
            events.extend(agg.events)
            agg.events.clear()
        return events

    async def audit_many(self, rows: list[dict[str, Any]]) -> None:
        self.audit_rows.extend(rows)

    async def enqueue(self, *, channel: str, kind: str, recipient: str, payload: dict[str, Any], at: datetime,
                      dedup_key: str | None = None) -> None:
        await self.enqueue_many([{"channel": channel, "kind": kind, "recipient": recipient, "payload": payload,
                                  "dedup_key": dedup_key}], at=at)

    async def enqueue_many(self, rows: list[dict[str, Any]], *, at: datetime) -> None:
        self.outbox.extend({"dedup_key": None, **row, "created_at": at} for row in rows)

    async def send(self, *messages: OutboxMessage, at: datetime) -> None:
        await self.enqueue_many([{"channel": m.channel, "kind": m.kind, "recipient": m.recipient,
                                  "payload": m.payload(), "dedup_key": m.dedup_key, "urgent": m.urgent}
                                 for m in messages], at=at)

    async def create_receivables(self, rows: list[dict[str, Any]], *, at: datetime) -> None:
        self.receivables.extend(rows)

    async def create_waybill_draft(self, *, order_no: str, voided_waybill: str | None, address: str, at: datetime) -> int:
        return 1

    async def use_waybill_draft(self, *, order_no: str, waybill: str, at: datetime) -> None:
        return None

    async def history(self, entity: str, entity_id: str, limit: int = 50) -> list[dict[str, Any]]:
        return [r for r in self.audit_rows if (r["entity"], r["entity_id"]) == (entity, entity_id)][-limit:]

    def pushed(self, recipient: str) -> list[str]:
        """The texts (or card titles) queued for one person."""
        return [r["payload"].get("text") or r["payload"].get("title", "") for r in self.outbox
                if r["recipient"] == recipient]


def _satisfies_the_protocol(uow: FakeUnitOfWork) -> AbstractUnitOfWork:
    return uow  # mypy checks the fake against the handlers' interface here
