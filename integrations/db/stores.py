"""The store register (table `stores`): the sender on a store's waybills, the names people use in chat."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.stores import Store
from integrations.db import tables as t


class StoreRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def get(self, code: str) -> Store | None:
        row = (await self.conn.execute(select(t.stores).where(t.stores.c.code == code))).first()
        return _store(row) if row else None

    async def list(self) -> list[Store]:
        return [_store(r) for r in await self.conn.execute(select(t.stores).order_by(t.stores.c.code))]

    async def save(self, store: Store, at: datetime) -> Store | None:
        """Insert or update; returns the store as it was before (None: it is new)."""
        before = await self.get(store.code)
        values = {"name": store.name, "address": store.address, "phone": store.phone, "updated_at": at}
        if before is None:
            await self.conn.execute(insert(t.stores).values(code=store.code, created_at=at, **values))
        else:
            await self.conn.execute(update(t.stores).where(t.stores.c.code == store.code).values(**values))
        return before


def _store(row: Any) -> Store:
    m = row._mapping
    return Store(m["code"], m["name"], m["address"], m["phone"])
