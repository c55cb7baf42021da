"""The unit of work: one AsyncSession, one transaction; state, audit and outbox rows commit together."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from types import TracebackType
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from domain.events import Event
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.repositories import (
    AfterSaleRepository,
    InventoryRepository,
    OrderRepository,
    UserRepository,
)


class UnitOfWork:
    def __init__(self, db: Database) -> None:
        self._db = db
        self.session: AsyncSession
        self.conn: AsyncConnection
        self._seen: list[Any] = []

    async def __aenter__(self) -> UnitOfWork:
        self.session = self._db.sessions()
        # Core statements go straight to the session's connection: the ORM execute path costs ~2x
        self.conn = await self.session.connection()
        self._seen = []
        self.orders = OrderRepository(self.conn, self._seen)
        self.inventory = InventoryRepository(self.conn)
        self.aftersales = AfterSaleRepository(self.conn, self._seen)
        self.users = UserRepository(self.conn)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self.session.rollback()
        finally:
            await self.session.close()

    async def commit(self) -> None:
        await self.session.commit()

    async def rollback(self) -> None:
        await self.session.rollback()

    def collect_events(self) -> Iterator[Event]:
        """Pop events from every aggregate this unit of work has touched, until none are left."""
        while any(agg.events for agg in self._seen):
            for agg in self._seen:
                while agg.events:
                    yield agg.events.pop(0)

    _audit = insert(t.audit_log)

    async def audit(
        self,
        *,
        actor: str,
        via: str,
        entity: str,
        entity_id: str,
        action: str,
        at: datetime,
        from_state: str | None = None,
        to_state: str | None = None,
        outcome: str = "ok",
        reason: str = "",
        detail: dict[str, Any] | None = None,
    ) -> None:
        await self.conn.execute(
            self._audit,
            {
                "at": at, "actor": actor, "via": via, "entity": entity, "entity_id": entity_id, "action": action,
                "from_state": from_state, "to_state": to_state, "outcome": outcome, "reason": reason,
                "detail": detail,
            },
        )

    async def audit_many(self, rows: list[dict[str, Any]]) -> None:
        """Audit rows with the keys of `audit`, in one executemany."""
        if rows:
            await self.conn.execute(self._audit, rows)

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
        await self.conn.execute(
            insert(t.outbox).values(
                created_at=at, channel=channel, kind=kind, recipient=recipient, payload=payload,
                dedup_key=dedup_key, status="pending", attempts=0, next_attempt_at=at, last_error="",
            )
        )

    async def open_exception(
        self, *, kind: str, message: str, at: datetime, order_no: str | None = None,
        sku: str | None = None, store: str | None = None, severity: str = "warning",
    ) -> None:
        await self.conn.execute(
            insert(t.exceptions).values(
                kind=kind, order_no=order_no, sku=sku, store=store, severity=severity,
                message=message, opened_at=at, resolution="",
            )
        )

    async def create_receivable(self, *, order_no: str, customer_id: str, amount_fen: int, at: datetime) -> None:
        await self.conn.execute(
            insert(t.receivables).values(
                order_no=order_no, customer_id=customer_id, amount_fen=amount_fen, created_at=at
            )
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
