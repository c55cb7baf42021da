"""A burst of callbacks with one bad message in it: the bad one is refused (or fails) alone, the other 19 are
answered 200, stored and processed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import select

from bot.keys import DB, INBOUND_QUEUE
from integrations.db import tables as t
from integrations.db.inbox_writer import InboxWriter
from integrations.fakes.wecom_signer import sign_callback, text_xml
from tests.e2e.conftest import AES_KEY, CORP_ID, TOKEN, Chat
from tests.e2e.dingtalk_harness import Ding, staff_id


async def inbox(app: Any) -> dict[str, Any]:
    async with app[DB].engine.connect() as conn:
        found = await conn.execute(select(t.inbound_messages.c.message_id, t.inbound_messages.c.processed_at))
        return {m: p for m, p in found}


async def post_wecom(chat: Chat, user: str, msg_id: str) -> tuple[int, str]:
    xml = text_xml(user, "帮助", msg_id, int(time.time()), corp_id=CORP_ID)
    query, body = sign_callback(TOKEN, AES_KEY, CORP_ID, xml, int(time.time()), "n0nce")
    response = await chat.client.post("/wecom/callback", params=query, data=body)
    return response.status, await response.text()


async def users(chat: Chat | Ding, n: int) -> list[str]:
    names = [f"u{i:02d}" for i in range(n)]
    for name in names:
        await chat.add_user(name, name, "warehouse", store="SH01")
    return names


async def test_a_wecom_msgid_past_its_column_is_refused_and_the_19_others_are_answered(
    chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    people = await users(chat, 20)
    ids = [str(9_000_000 + i) for i in range(20)]
    ids[5] = "7" * 129
    answers = await asyncio.gather(*(post_wecom(chat, u, m) for u, m in zip(people, ids, strict=True)))
    await chat.settle()
    assert answers[5][0] == 400 and "消息编号太长（最多 128 个字符）" in answers[5][1]
    assert [s for i, (s, _) in enumerate(answers) if i != 5] == [200] * 19
    stored = await inbox(chat.app)
    assert "7" * 129 not in stored
    assert sorted(stored) == sorted(m for i, m in enumerate(ids) if i != 5)
    assert all(stored.values()), "every stored message was processed"
    assert all(chat.received(u) for i, u in enumerate(people) if i != 5)
    assert not chat.received(people[5])
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_a_dingtalk_msgid_past_its_column_is_refused_and_the_others_are_answered(ding: Ding) -> None:
    people = await users(ding, 5)
    ids = [f"msg{i}" for i in range(5)]
    ids[2] = "m" * 129
    statuses = await asyncio.gather(*(ding.say(u, "帮助", msg_id=m) for u, m in zip(people, ids, strict=True)))
    await ding.settle()
    assert statuses == [200, 200, 400, 200, 200]
    stored = await inbox(ding.app)
    assert sorted(stored) == sorted(m for i, m in enumerate(ids) if i != 2) and all(stored.values())
    assert not ding.fake.messages_to(staff_id(people[2]))


async def test_a_msgid_at_its_limit_is_stored_processed_and_answered(ding: Ding, chat: Chat) -> None:
    await ding.add_user("wh1", "王强", "warehouse", store="SH01")
    assert await ding.say("wh1", "帮助", msg_id="d" * 128) == 200  # its reply's de-dup key must fit too
    await ding.settle()
    assert (await inbox(ding.app))["d" * 128] is not None
    assert "可以发这些命令" in ding.last("wh1")


async def test_a_row_the_database_refuses_fails_alone(chat: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a row does to its batch (here: the database refuses it), the others are stored one by one."""
    people = await users(chat, 20)
    ids = [str(8_000_000 + i) for i in range(20)]
    real_write = InboxWriter._write

    async def refuse_poison(self: InboxWriter, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
        await asyncio.sleep(0.05)  # let the burst gather into batches
        if any(r["message_id"] == ids[11] for r in rows):
            raise RuntimeError("the database refused a row")
        return await real_write(self, rows)

    monkeypatch.setattr(InboxWriter, "_write", refuse_poison)
    chat.app[INBOUND_QUEUE].inbox = InboxWriter(chat.app[DB])
    answers = await asyncio.gather(*(post_wecom(chat, u, m) for u, m in zip(people, ids, strict=True)))
    await chat.settle()
    assert answers[11][0] == 500
    assert [s for i, (s, _) in enumerate(answers) if i != 11] == [200] * 19
    stored = await inbox(chat.app)
    assert sorted(stored) == sorted(m for i, m in enumerate(ids) if i != 11) and all(stored.values())
    assert all(chat.received(u) for i, u in enumerate(people) if i != 11)
