"""Any text a person (or an attacker with a valid signature) sends ends answered and processed, on SQLite and
on PostgreSQL (which enforces lengths and rejects NUL): never stuck, never an ERROR."""

from __future__ import annotations

import itertools
import logging

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.keys import DB
from domain.chat_commands import COMMANDS
from integrations.db import tables as t
from tests.e2e.dingtalk_harness import Ding

FORMS = [form for spec in COMMANDS.typed for form in spec.forms]
HOSTILE = st.one_of(
    st.text(max_size=20),
    st.text(alphabet="0123456789٣三９#\x00", max_size=30),
    st.text(alphabet="SFOBA0123456789-_'\";", min_size=60, max_size=120),
    st.text(min_size=480, max_size=5200),
)
TEXT = st.one_of(
    st.text(max_size=200),
    st.tuples(st.sampled_from(FORMS), st.lists(HOSTILE, min_size=1, max_size=3)).map(lambda t: " ".join([t[0], *t[1]])),
)
IDS = itertools.count(1)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=TEXT)
@example(text="确认 " + "1" * 25)
@example(text="解决 ٣ 已处理")
@example(text="打包 OB1 " + "S" * 100)
@example(text="改地址 OB1 " + "路" * 5000)
@example(text="查询 " + "A" * 300)
@example(text="解冻 C\x00")
async def test_any_text_is_answered_and_processed(ding: Ding, caplog: pytest.LogCaptureFixture, text: str) -> None:
    if not getattr(ding, "_staffed", False):
        for user, role, store in (("wh1", "warehouse", "SH01"), ("sup1", "supervisor", None), ("cs1", "service", None)):
            await ding.add_user(user, user, role, store=store)
        ding._staffed = True  # type: ignore[attr-defined]
    msg_id = f"any{next(IDS)}"
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        for user in ("wh1", "sup1", "cs1"):
            assert await ding.say(user, text, msg_id=f"{msg_id}-{user}") == 200
        await ding.settle()
    async with ding.app[DB].engine.connect() as conn:
        found = (await conn.execute(
            select(t.inbound_messages.c.processed_at).where(t.inbound_messages.c.message_id.like(f"{msg_id}-%"))
        )).all()
    assert len(found) in (0, 3)  # a text the robot ignores (empty after @-mentions) is not stored at all
    assert all(processed for (processed,) in found), text[:80]
    assert not [r for r in caplog.records if r.levelname == "ERROR"], text[:80]
