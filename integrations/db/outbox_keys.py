"""Which outbox dedup keys are taken: a reaction skips what is already queued instead of failing the batch."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from integrations.db import tables as t
from integrations.db.engine import in_list
from integrations.db.held_writes import held_rows


class OutboxKeys:
    # a plain read that need not wait for the rows held back for the outbox: `taken` reads those itself
    _hot_taken = in_list(select(t.outbox.c.dedup_key), t.outbox.c.dedup_key, "b_keys", read=frozenset())

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def taken(self, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        asked = set(keys)
        held = {str(row["dedup_key"]) for row in held_rows(self.conn, "outbox")  # this unit of work's own
                if row.get("dedup_key") in asked}
        return held | {row["dedup_key"] for row in await self._hot_taken.fetch(self.conn, {"b_keys": list(keys)})}
