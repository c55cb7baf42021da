"""Business numbers (OB00000012, AS000012) derived from the row id when a new aggregate has none yet."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from integrations.db.engine import HotStatement


async def assign_number(conn: AsyncConnection, table: Table, row_id: int, aggregate: Any, field: str, number: str) -> None:
    """Store `number` in the new row's `field` and on the aggregate, and in the events it already raised (they
    were raised before the row existed, so they name no number yet)."""
    name(aggregate, field, number)
    await conn.execute(update(table).where(table.c.id == row_id).values({field: number}))


def name(aggregate: Any, field: str, number: str) -> None:
    """The number on the aggregate and in the events it raised before it had one."""
    setattr(aggregate, field, number)
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
        name(aggregate, field, number(row_id))
    statement = _NUMBERING.get((table.name, field))
    if statement is None:
        update_stmt = update(table).where(table.c.id == bindparam("b_id")).values({field: bindparam("b_number")})
        statement = _NUMBERING[table.name, field] = HotStatement(update_stmt, ("b_id", "b_number"))
    await statement.executemany(conn, [{"b_id": row_id, "b_number": getattr(agg, field)} for row_id, agg in rows])


_NUMBERING: dict[tuple[str, str], HotStatement] = {}  # built once per table: building costs more than running


async def next_ids(conn: AsyncConnection, table: Table, count: int) -> list[int]:
    """PostgreSQL: `count` ids taken from the table's sequence, so that new rows are inserted already numbered
    (an insert and then an update of the number would write every row and all its indexes twice)."""
    rows = await conn.execute(
        text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"),
        {"table": table.name, "count": count},
    )
    return [int(r[0]) for r in rows]
