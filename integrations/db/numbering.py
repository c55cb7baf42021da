"""Business numbers (OB00000012, AS000012) derived from the row id when a new aggregate has none yet."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, update
from sqlalchemy.ext.asyncio import AsyncConnection


async def assign_number(conn: AsyncConnection, table: Table, row_id: int, aggregate: Any, field: str, number: str) -> None:
    """Store `number` in the new row's `field` and on the aggregate, and in the events it already raised (they
    were raised before the row existed, so they name no number yet)."""
    setattr(aggregate, field, number)
    await conn.execute(update(table).where(table.c.id == row_id).values({field: number}))
    for event in aggregate.events:
        if hasattr(event, field) and not getattr(event, field):
            object.__setattr__(event, field, number)  # events are frozen: this fills in what they could not know
