"""Which outbox dedup keys are taken: a reaction skips what is already queued instead of failing the batch."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from integrations.db import tables as t


class OutboxKeys:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def taken(self, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        found = await self.conn.execute(select(t.outbox.c.dedup_key).where(t.outbox.c.dedup_key.in_(list(keys))))
        return {key for (key,) in found}
