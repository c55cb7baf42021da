"""Delivery under faults, on SQLite and PostgreSQL, against fake WeCom and DingTalk servers that keep the test's time:
an outage of ten minutes, an outage longer than the retry window, a person's per-minute cap under random faults,
and a send that stalls while everyone else's messages go out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from domain.chat import Button, Card, Reply, to_payload
from domain.users import User
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.tokens import DbTokenCache
from integrations.db.uow import UnitOfWork
from integrations.delivery import DeadRowWarnings, OutboxDispatcher
from integrations.delivery.dingtalk_sender import DingTalkChatSender
from integrations.delivery.fanout import DINGTALK_CHAT, WECOM_CHAT
from integrations.delivery.limiter import RecipientLimiter
from integrations.delivery.wecom_sender import WeComChatSender
from integrations.dingtalk.client import DingTalkClient
from integrations.fakes.dingtalk import FakeDingTalk, visible_text
from integrations.fakes.wecom import SEND_PATH, FakeWeCom
from integrations.tokens import MemoryTokenCache
from integrations.wecom.client import WeComClient
from tests.integration.helpers import rows

CORP_ID, SECRET, AGENT_ID = "ww-faults", "faults-secret", 1000011


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def seconds(self) -> float:
        return self.now.timestamp()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeWeCom]:
    async with FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID, clock=clock.seconds) as server:
        yield server


def wecom_client(http: httpx.AsyncClient, fake: FakeWeCom, db: Database) -> WeComClient:
    return WeComClient(http, api_base=fake.base_url, corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID,
                       token_cache=DbTokenCache(db))


def chat_sender(http: httpx.AsyncClient, fake: FakeWeCom, db: Database, clock: Clock,
                channel: str = "chat") -> WeComChatSender:
    return WeComChatSender(wecom_client(http, fake, db), AGENT_ID, RecipientLimiter(db, channel=channel, clock=clock))


async def enqueue(db: Database, at: datetime, items: list[tuple[str, Reply | Card]], channel: str = "chat") -> list[int]:
    async with UnitOfWork(db) as uow:
        await uow.enqueue_many([
            {"channel": channel, "kind": "card" if isinstance(item, Card) else "message", "recipient": to,
             "payload": to_payload(item)} for to, item in items
        ], at=at)
        await uow.commit()
    return [r["id"] for r in await rows(db, t.outbox, t.outbox.c.channel == channel)][-len(items):]


def pick_card(n: int) -> Card:
    no = f"OB{n:08d}"
    return Card("拣货任务", f"订单 {no} 待拣货", f"pick-{no}", buttons=(Button(f"pick {no}", "开始拣货"),))


def shown_task_ids(fake: FakeWeCom, userid: str) -> list[str]:
    return [m["template_card"]["task_id"] for m in fake.messages
            if m["touser"] == userid and m["msgtype"] == "template_card"]


async def test_a_ten_minute_wecom_outage_loses_nothing_and_the_queue_drains_in_order(
    db: Database, fake: FakeWeCom, http: httpx.AsyncClient, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """20 pick-task cards queued as WeCom goes down for ten minutes (the old budget of 8 attempts lasted ~127 s)."""
    cards = [(f"wh{n % 4}", pick_card(n)) for n in range(20)]
    await enqueue(db, clock(), cards)
    d = OutboxDispatcher(db, {"chat": chat_sender(http, fake, db, clock)}, clock=clock)
    fake.go_down()
    down_from = clock()
    with caplog.at_level(logging.INFO):
        while clock() < down_from + timedelta(minutes=10):
            await d.run_once()
            clock.advance(5)
        during = await rows(db, t.outbox)
        tried_while_down = sum(r["attempts"] for r in during)
        fake.go_down(False)
        for _ in range(100):
            if not await d.run_once():
                clock.advance(5)
            if all(r["status"] != "pending" for r in await rows(db, t.outbox)):
                break

    assert {r["status"] for r in during} == {"pending"}  # nothing died during the outage
    assert tried_while_down <= 40  # the breaker held the channel: not 20 rows retried all the while
    assert {r["status"] for r in await rows(db, t.outbox)} == {"delivered"}
    for k in range(4):  # every card shown once, each person's in the order they were queued
        assert shown_task_ids(fake, f"wh{k}") == [card.task_id for to, card in cards if to == f"wh{k}"]
    breaker_lines = [r.getMessage() for r in caplog.records if r.name == "integrations.delivery.retry"
                     and r.levelno >= logging.WARNING]
    assert len(breaker_lines) == 2 and "looks down" in breaker_lines[0] and "is back" in breaker_lines[1]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_rows_past_the_retry_window_die_together_and_managers_hear_once_on_dingtalk(
    db: Database, fake: FakeWeCom, http: httpx.AsyncClient, clock: Clock
) -> None:
    """WeCom down for longer than the window: the 20 cards die; each manager gets ONE warning, through DingTalk."""
    async with UnitOfWork(db) as uow:
        for user in (User("m1", "周经理", frozenset({"manager"}), None, "ding-m1"),
                     User("m2", "吴经理", frozenset({"manager"}), None, "")):  # m2 is on WeCom only
            await uow.users.upsert(user, clock())
        await uow.commit()
    await enqueue(db, clock(), [(f"wh{n % 4}", pick_card(n)) for n in range(20)], channel=WECOM_CHAT)
    async with FakeDingTalk(clock=clock.seconds) as ding:
        dingtalk = DingTalkClient(http, api_base=ding.base_url, app_key=ding.app_key, app_secret=ding.app_secret,
                                  token_cache=MemoryTokenCache(), clock=clock.seconds)
        senders = {WECOM_CHAT: chat_sender(http, fake, db, clock, WECOM_CHAT), DINGTALK_CHAT: DingTalkChatSender(dingtalk)}
        warnings = DeadRowWarnings(db, channels=senders, clock=clock)
        d = OutboxDispatcher(db, senders, clock=clock, retry_window_s=600, on_dead=warnings)
        fake.go_down()
        start = clock()
        while clock() < start + timedelta(minutes=12):
            await d.run_once()
            clock.advance(5)
        assert await warnings.report() == 20
        assert await warnings.report() == 0  # reported once
        while await d.run_once():
            pass

        dead = await rows(db, t.outbox, t.outbox.c.status == "dead")
        assert len(dead) == 20 and all("gave up after" in r["last_error"] for r in dead)
        [warning] = [visible_text(m) for m in ding.messages_to("ding-m1")]
        assert warning.startswith("20 条外发消息投递失败，已停止重试：")
    assert len(await rows(db, t.outbox, t.outbox.c.dedup_key.like("dead:%"))) == 2  # one per manager
    [m2] = await rows(db, t.outbox, t.outbox.c.dedup_key.like("dead:%:m2"))
    assert (m2["channel"], m2["status"]) == ("chat", "pending")  # no other platform reaches m2: the usual way


async def test_45_pushes_to_one_person_under_faults_none_dropped_by_wecoms_cap(
    db: Database, fake: FakeWeCom, http: httpx.AsyncClient, clock: Clock
) -> None:
    """30 % of sends fail, a quarter of those after WeCom showed the message (the answer comes too late): a send whose
    outcome is unknown counts against the 30 a minute, so WeCom never drops the 31st — which would be the digest."""
    fake.chaos(0.3, seed=7, late_s=1.0)  # the client gives up after CLIENT_TIMEOUT_S (0.3 s)
    d = OutboxDispatcher(db, {"chat": chat_sender(http, fake, db, clock)}, clock=clock)
    pushes = [f"推送#{i:02d}" for i in range(1, 46)]
    await enqueue(db, clock(), [("wh1", Reply(text)) for text in pushes])
    for _ in range(400):
        await d.run_once()
        clock.advance(2)
        if all(r["status"] != "pending" for r in await rows(db, t.outbox)):
            break

    assert fake.dropped == []
    shown = [m["text"]["content"] for m in fake.messages]
    assert all(any(text in message for message in shown) for text in pushes)
    assert {r["status"] for r in await rows(db, t.outbox)} == {"delivered"}


async def test_a_stalled_send_holds_no_one_else(db: Database, fake: FakeWeCom, clock: Clock) -> None:
    """Real time: the first send stalls for 30 s; the 60 messages to other people queued behind it go out meanwhile."""
    fake.set_clock(lambda: datetime.now(UTC).timestamp())
    await enqueue(db, datetime.now(UTC), [("slow", Reply("卡住的消息"))])
    await enqueue(db, datetime.now(UTC), [(f"p{n % 30:02d}", Reply(f"消息#{n:02d}")) for n in range(60)])
    fake.stall_next(30.0, path=SEND_PATH)
    async with httpx.AsyncClient(timeout=60) as slow_http:
        d = OutboxDispatcher(db, {"chat": WeComChatSender(wecom_client(slow_http, fake, db), AGENT_ID,
                                                          RecipientLimiter(db))}, batch=50)
        stop = asyncio.Event()
        running = asyncio.create_task(d.run_forever(stop, idle_s=0.2, drain_s=0.5))
        try:
            for _ in range(250):  # up to 25 s, well inside the stall
                if sum(m["touser"] != "slow" for m in fake.messages) == 60:
                    break
                await asyncio.sleep(0.1)
            others = sorted(m["text"]["content"] for m in fake.messages if m["touser"] != "slow")
            still_stalled = [r["status"] for r in await rows(db, t.outbox, t.outbox.c.recipient == "slow")]
        finally:
            stop.set()
            await running
    assert others == [f"消息#{n:02d}" for n in range(60)]
    assert still_stalled == ["pending"]  # ...while the stalled send had not come back
