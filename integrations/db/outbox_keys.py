"""Which outbox dedup keys are taken: a reaction skips what is already queued instead of failing the batch."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from integrations.db import tables as t
from integrations.db.engine import in_list


class OutboxKeys:
    _hot_taken = in_list(select(t.outbox.c.dedup_key), t.outbox.c.dedup_key, "b_keys")

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def taken(self, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        return {row["dedup_key"] for row in await self._hot_taken.fetch(self.conn, {"b_keys": list(keys)})}
