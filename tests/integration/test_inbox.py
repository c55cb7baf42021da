"""The inbox stores a platform message once, however many copies arrive at the same moment."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from domain.clock import utcnow
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.inbox_writer import InboxWriter
from tests.integration.helpers import rows


async def test_copies_in_one_burst_are_stored_once_and_only_the_first_is_new(db: Database) -> None:
    writer = InboxWriter(db)
    ids = ["m1", "m2", "m1", "m3", "m1", "m2"]
    results = await asyncio.gather(*(writer.record("wecom", i, {"text": i}, utcnow()) for i in ids))
    assert results == [True, True, False, True, False, False]
    assert sorted(r["message_id"] for r in await rows(db, t.inbound_messages)) == ["m1", "m2", "m3"]
    assert await writer.record("wecom", "m2", {}, utcnow()) is False  # a later retry
    assert await writer.record("dingtalk", "m2", {}, utcnow()) is True  # another platform's id space


async def test_after_its_connections_are_cut_the_next_message_is_stored_at_once(db: Database) -> None:
    """The acknowledgement path writes straight on the driver: a connection the server cut must not go back to
    the pool, or every later acknowledgement would fail on it (and the platform retry for ever)."""
    if db.is_sqlite:
        pytest.skip("PostgreSQL: connections the server can cut")
    writer = InboxWriter(db)
    assert await writer.record("wecom", "before", {"text": "a"}, utcnow()) is True
    other = Database(db.url)  # from outside the pool: every connection the pool holds is cut
    try:
        async with other.engine.connect() as conn:
            cut = await conn.scalar(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    finally:
        await other.dispose()
    assert cut >= 1
    for n in range(3):
        assert await writer.record("wecom", f"after{n}", {"text": "b"}, utcnow()) is True
    stored = {r["message_id"]: r["payload"] for r in await rows(db, t.inbound_messages)}
    assert stored == {"before": {"text": "a"}, "after0": {"text": "b"}, "after1": {"text": "b"},
                      "after2": {"text": "b"}}
