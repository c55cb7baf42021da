"""The unit of work: one AsyncSession, one transaction; state, audit and outbox rows commit together."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, TypeVar, overload

from sqlalchemy import bindparam, insert, select, update
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
from integrations.db.engine import HELD, Database, HotStatement, close, commit
from integrations.db.events import EVENT_KEYS, event_rows
from integrations.db.health_views import HealthViews
from integrations.db.held_writes import HeldWrites, insert_rows, send_held
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


T = TypeVar("T")


class _Repository(Generic[T]):
    """A repository of the unit of work, made on first use in each `async with` and kept until its end."""

    def __init__(self, make: Callable[[UnitOfWork], T]) -> None:
        self._make = make

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, uow: None, owner: type) -> _Repository[T]: ...
    @overload
    def __get__(self, uow: UnitOfWork, owner: type) -> T: ...
    def __get__(self, uow: UnitOfWork | None, owner: type) -> T | _Repository[T]:
        if uow is None:
            return self
        repo = vars(uow)[self._name] = self._make(uow)  # found in the instance from now on
        uow._made.append(self._name)
        return repo


class UnitOfWork:
    orders = _Repository(lambda uow: OrderRepository(uow.conn, uow._seen))
    inventory = _Repository(lambda uow: InventoryRepository(uow.conn))
    aftersales = _Repository(lambda uow: AfterSaleRepository(uow.conn, uow._seen))
    users = _Repository(lambda uow: UserRepository(uow.conn))
    stores = _Repository(lambda uow: StoreRepository(uow.conn))
    print_rows = _Repository(lambda uow: PrintRows(uow.conn))
    inbox = _Repository(lambda uow: InboxRepository(uow.conn))
    incidents = _Repository(lambda uow: IncidentRepository(uow.conn))
    customers = _Repository(lambda uow: CustomerRepository(uow.conn))
    customer_keys = _Repository(lambda uow: CustomerKeyRepository(uow.conn))
    skus = _Repository(lambda uow: SkuRepository(uow.conn))
    freezes = _Repository(lambda uow: FreezeRepository(uow.conn))
    tracks = _Repository(lambda uow: CourierTrackRepository(uow.conn))
    marks = _Repository(lambda uow: AlertMarks(uow.conn))
    outbox_keys = _Repository(lambda uow: OutboxKeys(uow.conn))
    views = _Repository(lambda uow: WorklistViews(uow.conn))
    stock_views = _Repository(lambda uow: SafetyStockViews(uow.conn))
    consistency = _Repository(lambda uow: ConsistencyRepository(uow.conn))
    ask_views = _Repository(lambda uow: AskViews(uow.conn))
    health = _Repository(lambda uow: HealthViews(uow.conn))

    def __init__(self, db: Database) -> None:
        self._db = db
        self.conn: AsyncConnection
        self._session: AsyncSession | None = None
        self._seen: list[Any] = []
        self._made: list[str] = []  # the repositories made in this `async with` (see _Repository)
        self._raised: list[Event] = []
        self.actor, self.via = "system", "system"  # who acts through this unit of work: set by the bus
        # on PostgreSQL, the order's save and the audit and event rows it raised go as one statement (held_writes)
        self._held: HeldWrites | None = None if db.is_sqlite else HeldWrites()
        self._info: dict[Any, Any] = {}

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
        # begun without a greenlet round (AsyncConnection.begin takes one): beginning does no I/O, the driver
        # begins at the first statement
        self.conn.sync_connection.begin()  # type: ignore[union-attr]
        if self._held is not None:
            self._info = self.conn.info
            self._info[HELD] = self._held
        self._session = None
        self._seen = []
        self._raised = []
        for name in self._made:  # repositories are made on first use, for this connection (a command uses few)
            del vars(self)[name]
        self._made.clear()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._held is not None:  # what is still held was never sent: nothing of it is written
            self._held.clear()
            self._info.pop(HELD, None)
        try:
            if self._session is not None:
                await self._session.close()
        finally:
            await close(self.conn)  # rolls back whatever was not committed

    async def commit(self) -> None:
        inventory: InventoryRepository | None = vars(self).get("inventory")  # made only if used
        if inventory is not None:
            await inventory.flush()  # deductions go last: their row locks are held for the commit alone
        if self._session is not None:
            await self._session.flush()
        if self._held:  # in the transaction if anything began it, else committed by itself
            await send_held(self.conn)
        await commit(self.conn)

    async def rollback(self) -> None:
        if self._held is not None:
            self._held.clear()
        await self.conn.rollback()

    def acting(self, actor: str, via: str) -> None:
        self.actor, self.via = actor, via

    def emit(self, *events: Event) -> None:
        """A fact raised by a use case rather than by an aggregate (an 异常 claimed, a hold released)."""
        self._raised.extend(events)

    async def record(self, changes: list[Change], at: datetime) -> None:
        """The audit trail's one writer: a line per change, by this unit of work's actor unless it names one."""
        await self.audit_many(self._audit_rows(changes, at))

    def _audit_rows(self, changes: list[Change], at: datetime) -> list[dict[str, Any]]:
        return [
            {"at": at, "actor": c.actor or self.actor, "via": c.via or self.via, "entity": c.entity,
             "entity_id": c.entity_id[:AUDIT_ENTITY_ID_CHARS], "action": c.action, "from_state": c.from_state, "to_state": c.to_state,
             "outcome": c.outcome, "reason": c.reason, "detail": dict(c.detail) if c.detail is not None else None}
            for c in changes
        ]

    async def log(self, changes: list[Change], events: list[WireEvent], at: datetime) -> None:
        """`record` and `store_events` together (what every command pays): on PostgreSQL held back, to go with
        the order's save and the messages of the reactions in one statement (held_writes)."""
        await insert_rows(self.conn, (self._hot_audit, self._audit_rows(changes, at)),
                          (self._hot_events, event_rows(events, at=at, actor=self.actor, via=self.via)))

    _hot_events = HotStatement(insert(t.events), EVENT_KEYS)

    async def store_events(self, events: list[WireEvent], at: datetime) -> None:
        """The order event bus's one writer: events commit with the change that raised them, or not at all."""
        await insert_rows(self.conn, (self._hot_events, event_rows(events, at=at, actor=self.actor, via=self.via)))

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
        """Audit rows with the keys of AUDIT_KEYS (use `record`)."""
        await insert_rows(self.conn, (self._hot_audit, rows))

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
        """Outbox rows with the keys of `enqueue` (held back on PostgreSQL, as `log`)."""
        await insert_rows(self.conn, (self._hot_outbox, [
            {"dedup_key": None, "urgent": False, **row, "created_at": at, "status": "pending", "attempts": 0,
             "next_attempt_at": at, "last_error": ""}
            for row in rows
        ]))

    async def create_receivables(self, rows: list[dict[str, Any]], *, at: datetime) -> None:
        """Receivables (order_no, customer_id, amount_fen) created when orders ship."""
        await insert_rows(self.conn, (self._hot_receivables, [{**row, "created_at": at} for row in rows]))

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

    _hot_history = HotStatement(
        select(t.audit_log)
        .where(t.audit_log.c.entity == bindparam("b_entity"), t.audit_log.c.entity_id == bindparam("b_entity_id"))
        .order_by(t.audit_log.c.id.desc())
        .limit(bindparam("b_limit"))
    )

    async def history(self, entity: str, entity_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The audit trail of one record, oldest first: who, when, through what, from → to (查询 reads it)."""
        rows = await self._hot_history.fetch(self.conn, {"b_entity": entity, "b_entity_id": entity_id, "b_limit": limit})
        return [dict(r) for r in reversed(rows)]
