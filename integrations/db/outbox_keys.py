"""Which outbox dedup keys are taken: a reaction skips what is already queued instead of failing the batch."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from integrations.db import tables as t
from integrations.db.engine import HotStatement, in_list

_any_key, _in_keys = in_list(t.outbox.c.dedup_key, "b_keys")


class OutboxKeys:
    _hot_taken = HotStatement(select(t.outbox.c.dedup_key).where(_any_key),
                              elsewhere=select(t.outbox.c.dedup_key).where(_in_keys))

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def taken(self, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        return {row["dedup_key"] for row in await self._hot_taken.fetch(self.conn, {"b_keys": list(keys)})}
