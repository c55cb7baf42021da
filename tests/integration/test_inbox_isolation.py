"""One bad row never fails the others of its burst: the group commit falls back to writing rows one by one."""

from __future__ import annotations

import asyncio
import logging

import pytest

from domain import limits
from domain.clock import utcnow
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.inbox_writer import InboxWriter
from tests.integration.helpers import rows


async def test_a_poisoned_row_fails_alone_and_the_other_19_are_stored(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    writer = InboxWriter(db)
    payloads: list[dict[str, object]] = [{"text": f"m{i}"} for i in range(20)]
    payloads[7] = {"text": object()}  # cannot be stored on any database: the batch it rides in fails
    with caplog.at_level(logging.WARNING, logger="integrations.db.inbox_writer"):
        results = await asyncio.gather(
            *(writer.record("wecom", f"m{i}", p, utcnow()) for i, p in enumerate(payloads)), return_exceptions=True
        )
    assert isinstance(results[7], Exception)
    assert [r for i, r in enumerate(results) if i != 7] == [True] * 19
    stored = sorted(r["message_id"] for r in await rows(db, t.inbound_messages))
    assert stored == sorted(f"m{i}" for i in range(20) if i != 7)
    assert "writing its rows one by one" in caplog.text


async def test_copies_still_count_once_when_the_batch_falls_back(db: Database) -> None:
    writer = InboxWriter(db)
    ids = ["a", "b", "a", "bad", "b"]
    results = await asyncio.gather(
        *(writer.record("wecom", i, {"text": object()} if i == "bad" else {"text": i}, utcnow()) for i in ids),
        return_exceptions=True,
    )
    assert results[:3] == [True, True, False] and results[4] is False
    assert isinstance(results[3], Exception)


def test_the_edge_limits_are_the_columns() -> None:
    assert t.inbound_messages.c.message_id.type.length == limits.MESSAGE_ID.max_chars  # type: ignore[attr-defined]
    assert t.audit_log.c.actor.type.length == limits.USERID.max_chars  # type: ignore[attr-defined]
    assert t.outbox.c.dedup_key.type.length == limits.DEDUP_KEY_CHARS  # type: ignore[attr-defined]
