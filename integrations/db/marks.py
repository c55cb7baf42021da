"""Marks that make a job's alert happen once: `stuck:<order>:<state>`, `escalated:<exception id>`, ..."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from integrations.db import tables as t


async def mark_once(conn: AsyncConnection, keys: Sequence[str], at: datetime) -> set[str]:
    """Insert the marks that do not exist yet; returns those keys (the alerts still to send)."""
    if not keys:
        return set()
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    stmt = (
        dialect.insert(t.alert_marks)
        .values([{"key": key, "created_at": at} for key in dict.fromkeys(keys)])
        .on_conflict_do_nothing(index_elements=[t.alert_marks.c.key])
        .returning(t.alert_marks.c.key)
    )
    return set((await conn.execute(stmt)).scalars())


class AlertMarks:
    """The unit of work's face of `mark_once`."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def once(self, keys: Sequence[str], at: datetime) -> set[str]:
        """Mark `keys`; returns those not marked before (the alerts still to send)."""
        return await mark_once(self.conn, keys, at)
