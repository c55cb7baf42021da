"""The unit of work: one AsyncSession, one transaction; state, audit and outbox rows commit together."""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from domain.event_wire import WireEvent
from domain.events import Change, Event
from domain.limits import AUDIT_ENTITY_ID_CHARS
from domain.outbox import OutboxMessage
from integrations.db import tables as t
from integrations.db.aftersales import AfterSaleRepository
from integrations.db.ask_views import AskViews
from integrations.db.consistency import ConsistencyRepository
from integrations.db.customer_keys import CustomerKeyRepository
from integrations.db.customers import CustomerRepository
from integrations.db.engine import Database, HotStatement
from integrations.db.events import EVENT_KEYS, event_rows
from integrations.db.health_views import HealthViews
from integrations.db.inbox import InboxRepository
from integrations.db.incidents import IncidentRepository
from integrations.db.inventory import InventoryRepository
from integrations.db.marks import AlertMarks
from integrations.db.orders import OrderRepository
from integrations.db.outbox_keys import OutboxKeys
from integrations.db.print_rows import PrintRows
from integrations.db.skus import FreezeRepository, SkuRepository
from integrations.db.stock_views import SafetyStockViews
from integrations.db.stores import StoreRepository
from integrations.db.tracking import CourierTrackRepository
from integrations.db.users import UserRepository
from integrations.db.views import WorklistViews

DUPLICATE_ERRORS: tuple[type[Exception], ...] = (IntegrityError,)  # a unique key a concurrent twin took first

AUDIT_KEYS = ("at", "actor", "via", "entity", "entity_id", "action", "from_state", "to_state", "outcome", "reason",
              "detail")
OUTBOX_KEYS = ("channel", "kind", "recipient", "payload", "dedup_key", "created_at", "status", "attempts",
               "next_attempt_at", "last_error", "urgent")


class UnitOfWork:
    def __init__(self, db: Database) -> None:
        self._db = db
        self.conn: AsyncConnection
        self._session: AsyncSession | None = None
        self._seen: list[Any] = []
        self._raised: list[Event] = []
        self.actor, self.via = "system", "system"  # who acts through this unit of work: set by the bus

    @property
    def session(self) -> AsyncSession:
        """An ORM session inside this unit of work's transaction, made on first use (few need one)."""
        if self._session is None:
            self._session = AsyncSession(bind=self.conn, expire_on_commit=False)
        return self._session

    async def __aenter__(self) -> UnitOfWork:
        # a connection and its transaction, no ORM session: Core statements need none, and it costs a third of
        # a single command's own time
        self.conn = await self._db.engine.connect()
        await self.conn.begin()
        self._session = None
        self._seen = []
        self._raised = []
        self.orders = OrderRepository(self.conn, self._seen)
        self.inventory = InventoryRepository(self.conn)
        self.aftersales = AfterSaleRepository(self.conn, self._seen)
        self.users = UserRepository(self.conn)
        self.stores = StoreRepository(self.conn)
        self.print_rows = PrintRows(self.conn)
        self.inbox = InboxRepository(self.conn)
        self.incidents = IncidentRepository(self.conn)
        self.customers = CustomerRepository(self.conn)
        self.customer_keys = CustomerKeyRepository(self.conn)
        self.skus = SkuRepository(self.conn)
        self.freezes = FreezeRepository(self.conn)
        self.tracks = CourierTrackRepository(self.conn)
        self.marks = AlertMarks(self.conn)
        self.outbox_keys = OutboxKeys(self.conn)
        self.views = WorklistViews(self.conn)
        self.stock_views = SafetyStockViews(self.conn)
        self.consistency = ConsistencyRepository(self.conn)
        self.ask_views = AskViews(self.conn)
        self.health = HealthViews(self.conn)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._session is not None:
                await self._session.close()
        finally:
            await self.conn.close()  # rolls back whatever was not committed

    async def commit(self) -> None:
        await self.inventory.flush()  # deductions go last: their row locks are held for the commit alone
        if self._session is not None:
            await self._session.flush()
        await self.conn.commit()

    async def rollback(self) -> None:
        await self.conn.rollback()

    def acting(self, actor: str, via: str) -> None:
        self.actor, self.via = actor, via

    def emit(self, *events: Event) -> None:
        """A fact raised by a use case rather than by an aggregate (an 异常 claimed, a hold released)."""
        self._raised.extend(events)

    async def record(self, changes: list[Change], at: datetime) -> None:
        """The audit trail's one writer: a line per change, by this unit of work's actor unless it names one."""
        await self.audit_many([
            {"at": at, "actor": c.actor or self.actor, "via": c.via or self.via, "entity": c.entity,
             "entity_id": c.entity_id[:AUDIT_ENTITY_ID_CHARS], "action": c.action, "from_state": c.from_state, "to_state": c.to_state,
             "outcome": c.outcome, "reason": c.reason, "detail": dict(c.detail) if c.detail is not None else None}
            for c in changes
        ])

    _hot_events = HotStatement(insert(t.events), EVENT_KEYS)

    async def store_events(self, events: list[WireEvent], at: datetime) -> None:
        """The order event bus's one writer: events commit with the change that raised them, or not at all."""
        if events:
            await self._hot_events.executemany(self.conn, event_rows(events, at=at, actor=self.actor, via=self.via))

    def pop_events(self) -> list[Event]:
        """Take the events raised so far by every aggregate this unit of work has touched, and by its use cases."""
        events: list[Event] = self._raised
        self._raised = []
        for agg in self._seen:
            if agg.events:
                events.extend(agg.events)
                agg.events.clear()
        return events

    _audit = insert(t.audit_log)
    _hot_audit = HotStatement(_audit, AUDIT_KEYS)

    async def audit_many(self, rows: list[dict[str, Any]]) -> None:
        """Audit rows with the keys of AUDIT_KEYS, in one executemany (use `record`)."""
        if rows:
            await self._hot_audit.executemany(self.conn, rows)

    _outbox = insert(t.outbox)
    _hot_outbox = HotStatement(_outbox, OUTBOX_KEYS)

    async def enqueue(
        self,
        *,
        channel: str,
        kind: str,
        recipient: str,
        payload: dict[str, Any],
        at: datetime,
        dedup_key: str | None = None,
    ) -> None:
        """Add an outbound effect to the outbox; it is delivered only after this transaction commits."""
        await self.enqueue_many(
            [{"channel": channel, "kind": kind, "recipient": recipient, "payload": payload, "dedup_key": dedup_key}],
            at=at,
        )

    async def send(self, *messages: OutboxMessage, at: datetime) -> None:
        """Typed outbound messages, delivered only after this transaction commits."""
        await self.enqueue_many([
            {"channel": m.channel, "kind": m.kind, "recipient": m.recipient, "payload": m.payload(),
             "dedup_key": m.dedup_key, "urgent": m.urgent}
            for m in messages
        ], at=at)

    async def enqueue_many(self, rows: list[dict[str, Any]], *, at: datetime) -> None:
        """Outbox rows with the keys of `enqueue`, in one executemany."""
        if rows:
            await self._hot_outbox.executemany(self.conn, [
                {"dedup_key": None, "urgent": False, **row, "created_at": at, "status": "pending", "attempts": 0,
                 "next_attempt_at": at, "last_error": ""}
                for row in rows
            ])

    async def create_receivables(self, rows: list[dict[str, Any]], *, at: datetime) -> None:
        """Receivables (order_no, customer_id, amount_fen) created when orders ship."""
        if rows:
            await self._hot_receivables.executemany(self.conn, [{**row, "created_at": at} for row in rows])

    _hot_receivables = HotStatement(insert(t.receivables), ("order_no", "customer_id", "amount_fen", "created_at"))

    async def create_waybill_draft(self, *, order_no: str, voided_waybill: str | None, address: str, at: datetime) -> int:
        """The new label for a changed address; any older draft of the order is superseded."""
        drafts = t.waybill_drafts
        await self.conn.execute(
            update(drafts).where(drafts.c.order_no == order_no, drafts.c.status == "draft").values(status="superseded")
        )
        result = await self.conn.execute(
            insert(drafts)
            .values(order_no=order_no, voided_waybill=voided_waybill, address=address, status="draft", created_at=at)
            .returning(drafts.c.id)
        )
        return int(result.scalar_one())

    async def use_waybill_draft(self, *, order_no: str, waybill: str, at: datetime) -> None:
        drafts = t.waybill_drafts
        await self.conn.execute(
            update(drafts)
            .where(drafts.c.order_no == order_no, drafts.c.status == "draft")
            .values(status="used", waybill=waybill, used_at=at)
        )

    async def history(self, entity: str, entity_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The audit trail of one record, oldest first: who, when, through what, from → to."""
        rows = await self.conn.execute(
            select(t.audit_log)
            .where(t.audit_log.c.entity == entity, t.audit_log.c.entity_id == entity_id)
            .order_by(t.audit_log.c.id.desc())
            .limit(limit)
        )
        return [dict(r._mapping) for r in reversed(rows.all())]
