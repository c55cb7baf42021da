"""Where each channel's catch-up pull got to: Douyin's searchList by update time, K3's ExecuteBillQuery by
modification time. The pull moves the cursor only after the orders it read are stored, so a crash between the
two reads the same page again (orders are idempotent on channel + external id) and a day of downtime is caught
up from where it stopped."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from integrations.db import tables as t
from integrations.db.engine import Database

_c = t.channel_cursors.c


class ChannelCursors:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, channel: str) -> str | None:
        async with self._db.engine.connect() as conn:
            return await conn.scalar(select(_c.position).where(_c.channel == channel))

    async def put(self, channel: str, position: str, at: datetime) -> None:
        insert = sqlite.insert if self._db.is_sqlite else postgresql.insert
        stmt = insert(t.channel_cursors).values(channel=channel, position=position, updated_at=at)
        stmt = stmt.on_conflict_do_update(index_elements=[_c.channel],
                                          set_={"position": stmt.excluded.position, "updated_at": at})
        async with self._db.engine.begin() as conn:
            await conn.execute(stmt)
