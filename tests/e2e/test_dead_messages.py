"""Every accepted message ends answered or parked: a failing message is retried a limited number of times,
then parked as dead, reported to the managers once, and never replayed again."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from bot.keys import BUS, DB, INBOUND_QUEUE
from domain.chat_commands import ShowHelp
from integrations.db import tables as t
from tests.e2e.conftest import Chat
from tests.e2e.harness import later

_inbox = t.inbound_messages


async def row(chat: Chat, message_id: str) -> Any:
    async with chat.app[DB].engine.connect() as conn:
        return (await conn.execute(select(_inbox).where(_inbox.c.message_id == message_id))).one()


def digests(chat: Chat, user: str) -> list[str]:
    return [m for m in chat.received(user) if "多次处理失败" in m]


@pytest.fixture
async def team(chat: Chat) -> Chat:
    await chat.add_user("wh1", "王强", "warehouse", store="SH01")
    await chat.add_user("mgr1", "王芳", "manager")
    await chat.add_user("mgr2", "张伟", "manager")
    queue = chat.app[INBOUND_QUEUE]
    queue.max_attempts, queue.retry_delay_s = 3, 0.0
    return chat


def break_help(chat: Chat, monkeypatch: pytest.MonkeyPatch, failures: int | None) -> list[int]:
    """帮助 raises an unexpected error `failures` times (None: always); returns the call counter."""
    bus = chat.app[BUS]
    real = bus.commands[ShowHelp]
    calls = [0]

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if failures is None or calls[0] <= failures:
            raise RuntimeError("boom")
        return await real(*args, **kwargs)

    monkeypatch.setitem(bus.commands, ShowHelp, flaky)
    return calls


async def test_a_message_that_always_fails_is_parked_after_n_tries_and_reported_once(
    team: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = break_help(team, monkeypatch, failures=None)
    assert await team.say("wh1", "帮助", msg_id="5001") == 200
    await team.settle()
    assert calls[0] == 3
    parked = await row(team, "5001")
    assert (parked.attempts, parked.processed_at is None, parked.parked_at is not None) == (3, True, True)
    assert "RuntimeError: boom" in parked.last_error
    for manager in ("mgr1", "mgr2"):
        [digest] = digests(team, manager)
        assert "有 1 条消息" in digest and "wh1（wecom）：帮助" in digest and "已试 3 次" in digest
    # a restart neither replays it nor reports it again
    assert await team.app[INBOUND_QUEUE].sweep(now=later()) == 0
    await team.settle()
    assert calls[0] == 3 and len(digests(team, "mgr1")) == 1
    # the platform re-sending it changes nothing either
    assert await team.say("wh1", "帮助", msg_id="5001") == 200
    await team.settle()
    assert calls[0] == 3


async def test_a_message_that_fails_then_works_is_answered(team: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = break_help(team, monkeypatch, failures=2)
    await team.say("wh1", "帮助", msg_id="5002")
    await team.settle()
    assert calls[0] == 3
    done = await row(team, "5002")
    assert done.processed_at is not None and done.parked_at is None and done.attempts == 2
    assert "可以发这些命令" in team.last("wh1")
    assert not digests(team, "mgr1")


async def test_at_start_up_exhausted_messages_are_parked_in_one_digest_and_the_rest_replayed(
    team: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = team.app[INBOUND_QUEUE]
    # stored, never processed: "died", nothing of them left in hand
    monkeypatch.setattr(queue, "_spawn", lambda msg, replayed=False: queue._held.pop((msg.platform, msg.message_id)))
    for msg_id in ("6001", "6002", "6003"):
        await team.say("wh1", "帮助", msg_id=msg_id)
    monkeypatch.undo()
    calls = break_help(team, monkeypatch, failures=0)
    async with team.app[DB].engine.begin() as conn:  # 6001 and 6002 died with the process three times
        await conn.execute(update(_inbox).where(_inbox.c.message_id.in_(["6001", "6002"])).values(attempts=3))
    assert await queue.sweep(now=later()) == 1
    await team.settle()
    assert calls[0] == 1  # only 6003 ran
    assert (await row(team, "6003")).processed_at is not None and (await row(team, "6003")).attempts == 1
    assert [(await row(team, m)).parked_at is not None for m in ("6001", "6002")] == [True, True]
    [digest] = digests(team, "mgr1")
    assert "有 2 条消息" in digest
    assert await queue.sweep(now=later()) == 0


async def test_a_replay_counts_as_an_attempt(team: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    """A message that kills the process each time is replayed at most max_attempts times."""
    queue = team.app[INBOUND_QUEUE]
    # every run "dies" before it ends, with nothing of the message left in hand
    monkeypatch.setattr(queue, "_spawn", lambda msg, replayed=False: queue._held.pop((msg.platform, msg.message_id), None))
    await team.say("wh1", "帮助", msg_id="7001")
    replays = [await queue.sweep(now=later()) for _ in range(5)]
    assert replays == [1, 1, 1, 0, 0]
    assert (await row(team, "7001")).parked_at is not None
