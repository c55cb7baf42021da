"""Business numbers (OB00000012, AS000012) derived from the row id when a new aggregate has none yet."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, update
from sqlalchemy.ext.asyncio import AsyncConnection


async def assign_number(conn: AsyncConnection, table: Table, row_id: int, aggregate: Any, field: str, number: str) -> None:
    """Store `number` in the new row's `field` and on the aggregate, and in the events it already raised (they
    were raised before the row existed, so they name no number yet)."""
    setattr(aggregate, field, number)
    await conn.execute(update(table).where(table.c.id == row_id).values({field: number}))
    for event in aggregate.events:
        if hasattr(event, field) and not getattr(event, field):
            object.__setattr__(event, field, number)  # events are frozen: this fills in what they could not know


async def assign_numbers(
    conn: AsyncConnection, table: Table, rows: Sequence[tuple[int, Any]], field: str, number: Callable[[int], str]
) -> None:
    """`assign_number` for many new rows at once: one executemany (a batch import's thousand orders)."""
    if not rows:
        return
    for row_id, aggregate in rows:
        setattr(aggregate, field, number(row_id))
        for event in aggregate.events:
            if hasattr(event, field) and not getattr(event, field):
                object.__setattr__(event, field, getattr(aggregate, field))
    stmt = update(table).where(table.c.id == bindparam("b_id")).values({field: bindparam("b_number")})
    await conn.execute(stmt, [{"b_id": row_id, "b_number": getattr(agg, field)} for row_id, agg in rows])
