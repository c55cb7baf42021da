"""A channel's catch-up cursor: absent at first, then the last position put, one row per channel."""

from __future__ import annotations

from datetime import UTC, datetime

from integrations.db.channel_cursors import ChannelCursors
from integrations.db.engine import Database

AT = datetime(2026, 2, 6, 9, 0, tzinfo=UTC)


async def test_a_cursor_remembers_the_last_position_per_channel(db: Database) -> None:
    cursors = ChannelCursors(db)
    assert await cursors.get("douyin") is None
    await cursors.put("douyin", "1770368400", AT)
    await cursors.put("douyin", "1770372000", AT)
    await cursors.put("k3", "2026-02-06T09:00:00", AT)
    assert await cursors.get("douyin") == "1770372000"
    assert await cursors.get("k3") == "2026-02-06T09:00:00"
