"""The inbox stores a platform message once, however many copies arrive at the same moment."""

from __future__ import annotations

import asyncio

from domain.clock import utcnow
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.inbox import InboxWriter
from tests.integration.helpers import rows


async def test_copies_in_one_burst_are_stored_once_and_only_the_first_is_new(db: Database) -> None:
    writer = InboxWriter(db)
    ids = ["m1", "m2", "m1", "m3", "m1", "m2"]
    results = await asyncio.gather(*(writer.record("wecom", i, {"text": i}, utcnow()) for i in ids))
    assert results == [True, True, False, True, False, False]
    assert sorted(r["message_id"] for r in await rows(db, t.inbound_messages)) == ["m1", "m2", "m3"]
    assert await writer.record("wecom", "m2", {}, utcnow()) is False  # a later retry
    assert await writer.record("dingtalk", "m2", {}, utcnow()) is True  # another platform's id space
