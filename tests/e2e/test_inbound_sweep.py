"""Acknowledged messages are answered without a restart: the running sweep re-queues what no live process has
under way, and a lost database connection is retried without spending one of the message's attempts."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from bot.app import create_app
from bot.keys import BUS, DB, INBOUND_QUEUE
from config.settings import InboxSettings, Settings
from domain.chat_commands import ShowHelp
from integrations.db import tables as t
from integrations.db.inbox import InboxRepository
from integrations.fakes.wecom import FakeWeCom
from tests.e2e.conftest import Chat

_inbox = t.inbound_messages


@pytest.fixture
async def quick(aiohttp_client: Any, e2e_settings: Settings, fake_wecom: FakeWeCom) -> Chat:
    """The app with a sweep every 0.2 s and a 1 s lease (as `orderbot serve` runs it, only faster)."""
    settings = e2e_settings.model_copy(update={"inbox": InboxSettings(sweep_interval_s=0.2, lease_s=1.0,
                                                                      sweep_batch=50)})
    chat = Chat(await aiohttp_client(create_app(settings, deliver=False)), fake_wecom, settings)
    await chat.add_user("wh1", "王强", "warehouse", store="SH01")
    return chat


async def inbox(chat: Chat) -> dict[str, Any]:
    async with chat.app[DB].engine.connect() as conn:
        return {r.message_id: r for r in await conn.execute(select(_inbox))}


async def until_processed(chat: Chat, count: int, deadline_s: float = 60) -> dict[str, Any]:
    end = time.monotonic() + deadline_s
    while True:
        found = await inbox(chat)
        if sum(r.processed_at is not None for r in found.values()) >= count or time.monotonic() > end:
            return found
        await asyncio.sleep(0.2)


async def test_messages_acked_by_a_process_that_then_died_are_answered_without_a_restart(
    quick: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = quick.app[INBOUND_QUEUE]
    # acked, then "died" before queueing: nothing of the message is left in hand
    monkeypatch.setattr(queue, "_spawn", lambda msg, replayed=False: queue._held.pop((msg.platform, msg.message_id)))

    async def dead() -> int:
        return 0

    monkeypatch.setattr(queue, "sweep", dead)  # a dead process sweeps nothing either
    for i in range(120):
        assert await quick.say("wh1", "帮助", msg_id=f"90{i:03d}") == 200
    monkeypatch.undo()
    found = await until_processed(quick, 120)
    assert sum(r.processed_at is not None for r in found.values()) == 120  # 50 a sweep at most: no cap left any
    assert {r.attempts for r in found.values()} == {1} and not any(r.parked_at for r in found.values())
    async with quick.app[DB].engine.connect() as conn:
        keys = (await conn.execute(select(t.outbox.c.dedup_key).where(t.outbox.c.dedup_key.like("reply:%")))).all()
    assert sorted(k for (k,) in keys) == sorted(f"reply:wecom:90{i:03d}:0" for i in range(120))  # one answer each


async def test_a_lost_database_connection_is_retried_without_spending_an_attempt(
    quick: Chat, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    queue = quick.app[INBOUND_QUEUE]
    queue.max_attempts = 1  # were a cut connection counted, the first would park the message as dead
    bus = quick.app[BUS]
    real, calls = bus.commands[ShowHelp], [0]

    async def cut_twice(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] <= 2:
            raise DBAPIError("SELECT 1", {}, ConnectionResetError("connection was closed"),
                             connection_invalidated=True)
        return await real(*args, **kwargs)

    monkeypatch.setitem(bus.commands, ShowHelp, cut_twice)
    assert await quick.say("wh1", "帮助", msg_id="9501") == 200
    found = await until_processed(quick, 1, deadline_s=30)
    row = found["9501"]
    assert (row.processed_at is not None, row.parked_at, row.attempts, calls[0]) == (True, None, 0, 3)
    await quick.settle()
    assert [m for m in quick.received("wh1") if "可以发这些命令" in m] and len(quick.received("wh1")) == 1
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_a_failure_that_cannot_be_counted_is_still_retried(
    quick: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handler fails and the database is gone when the failure is to be counted: the message is tried
    again in this process (it used to wait for a restart)."""
    bus = quick.app[BUS]
    real, calls = bus.commands[ShowHelp], [0]

    async def fail_once(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("boom")
        return await real(*args, **kwargs)

    count = InboxRepository.record_failure
    refused = [0]

    async def unreachable_once(self: InboxRepository, *args: Any, **kwargs: Any) -> Any:
        refused[0] += 1
        if refused[0] == 1:
            raise ConnectionRefusedError("connection refused")
        return await count(self, *args, **kwargs)

    monkeypatch.setitem(bus.commands, ShowHelp, fail_once)
    monkeypatch.setattr(InboxRepository, "record_failure", unreachable_once)
    assert await quick.say("wh1", "帮助", msg_id="9601") == 200
    row = (await until_processed(quick, 1, deadline_s=30))["9601"]
    assert (row.processed_at is not None, row.parked_at, calls[0]) == (True, None, 2)


async def test_a_sweep_while_a_message_is_being_stored_does_not_take_it_for_a_stray(
    quick: Chat, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Its row is committed a moment before the callback queues the message: a sweep in that moment (it happens
    under load) must not free it as dropped, which spent an attempt and queued it twice."""
    queue = quick.app[INBOUND_QUEUE]
    real = queue.inbox.record

    async def stored_then_swept(*args: Any) -> bool:
        stored = await real(*args)
        queue._stray_check = None  # the sweep's look for strays is due
        await queue.sweep()
        return stored

    monkeypatch.setattr(queue.inbox, "record", stored_then_swept)
    assert await quick.say("wh1", "帮助", msg_id="91001") == 200
    found = await until_processed(quick, 1)
    assert found["91001"].processed_at is not None and found["91001"].attempts == 0
    assert "dropped unanswered" not in caplog.text
