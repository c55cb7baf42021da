"""The transactional inbox: a platform message is stored (unique per platform + message id) before it is
acknowledged, and marked processed in the same transaction as what it caused. A retry or a second
replica finds it already there; a message whose processing died is replayed from its stored payload.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from integrations.db import tables as t
from integrations.db.engine import Database

_inbox = t.inbound_messages


async def record(db: Database, platform: str, message_id: str, payload: dict[str, Any], at: datetime) -> bool:
    """Store a new message; False when it was seen before (a retry, or another replica got it)."""
    try:
        async with db.engine.begin() as conn:
            await conn.execute(
                insert(_inbox).values(platform=platform, message_id=message_id, received_at=at, payload=payload)
            )
    except IntegrityError:
        return False
    return True


async def claim(conn: AsyncConnection, platform: str, message_id: str, at: datetime) -> bool:
    """Inside the unit of work that handles the message: False if it was already processed."""
    result = await conn.execute(
        update(_inbox)
        .where(and_(_inbox.c.platform == platform, _inbox.c.message_id == message_id, _inbox.c.processed_at.is_(None)))
        .values(processed_at=at)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def stale(db: Database, now: datetime, older_than_s: float = 30, limit: int = 100) -> list[dict[str, Any]]:
    """Messages stored but never processed (the process died after acknowledging): to replay."""
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            select(_inbox.c.platform, _inbox.c.message_id, _inbox.c.payload)
            .where(and_(_inbox.c.processed_at.is_(None), _inbox.c.received_at < now - timedelta(seconds=older_than_s)))
            .order_by(_inbox.c.received_at)
            .limit(limit)
        )
        return [dict(r._mapping) for r in rows]
