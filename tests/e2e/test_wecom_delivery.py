"""Replies and pushes through the whole app to a fake WeCom that fails, stalls and counts.

Each test drives delivery itself with its own OutboxDispatcher over the app's database and senders
(bot.app.senders), so back-offs and claim expiries pass on a test clock instead of in real time.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

from bot.app import senders
from bot.keys import DB, INBOUND_QUEUE, WECOM_CLIENT
from domain.chat import Reply, to_payload
from integrations.db import tables as t
from integrations.db.uow import UnitOfWork
from integrations.delivery.dispatcher import OutboxDispatcher, OutboxRow, Sender
from integrations.delivery.limiter import RecipientLimiter
from integrations.delivery.wecom_sender import WeComChatSender
from integrations.fakes.wecom import SEND_PATH
from tests.e2e.conftest import Chat
from tests.integration.helpers import rows

DIGEST_HEADER = "您有 "


class Clock:
    """The dispatcher's (and, where given, the limiter's) time, moved by the test. Start it after the
    rows it should see were committed: a row is due once the clock reaches its next_attempt_at."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Announcing:
    """Wraps a sender; `started` is set as soon as a delivery begins."""

    def __init__(self, inner: Sender) -> None:
        self.inner = inner
        self.started = asyncio.Event()

    async def deliver(self, row: OutboxRow) -> None:
        self.started.set()
        await self.inner.deliver(row)


def dispatcher(chat: Chat, clock: Clock, **options: object) -> OutboxDispatcher:
    return OutboxDispatcher(chat.app[DB], senders(chat.app), clock=clock, **options)  # type: ignore[arg-type]


async def outbox_rows(chat: Chat) -> list[dict[str, object]]:
    return await rows(chat.app[DB], t.outbox)


async def test_reply_outlives_transient_wecom_failures_and_arrives_once(chat: Chat) -> None:
    await chat.add_user("sup1", "李敏", "supervisor")
    chat.fake.fail_next(errcode=42001)  # the client refreshes the token at once and resends...
    chat.fake.fail_next(errcode=-1, times=3)  # ...into "system busy", three times
    chat.fake.fail_next(status=500)

    assert await chat.say("sup1", "帮助") == 200
    await chat.app[INBOUND_QUEUE].drain()
    clock = Clock()
    d = dispatcher(chat, clock)
    for attempt in range(1, 5):
        assert await d.run_once() == 1
        [row] = await outbox_rows(chat)
        assert (row["status"], row["attempts"]) == ("pending", attempt)
        assert await d.run_once() == 0  # backing off: nothing is sent before the back-off has elapsed
        clock.advance(400)
    assert "HTTP 500" in str(row["last_error"])
    assert await d.run_once() == 1
    assert await d.run_once() == 0

    [reply] = chat.received("sup1")
    assert "查询" in reply and "发货" in reply  # the help text
    [row] = await outbox_rows(chat)
    assert (row["status"], row["attempts"]) == ("delivered", 4)


async def test_dispatcher_killed_mid_send_and_a_fresh_one_deliver_it_once(chat: Chat) -> None:
    await chat.add_user("wh1", "王强", "warehouse", store="SH01")
    assert await chat.say("wh1", "帮助") == 200
    await chat.app[INBOUND_QUEUE].drain()
    clock = Clock()

    chat.fake.stall_next(2.0)
    sender = Announcing(senders(chat.app)["chat"])
    doomed = OutboxDispatcher(chat.app[DB], {"chat": sender}, clock=clock, claim_s=60)
    task = asyncio.create_task(doomed.run_once())
    async with asyncio.timeout(5):
        await sender.started.wait()
    for _ in range(500):  # until the send has reached the fake, which now sits on it
        if not chat.fake.stalls_waiting(SEND_PATH):
            break
        await asyncio.sleep(0.01)
    assert not chat.fake.stalls_waiting(SEND_PATH), "the send never reached the fake"
    task.cancel()  # the process dies while WeCom has not answered
    await asyncio.gather(task, return_exceptions=True)
    assert chat.received("wh1") == []
    await asyncio.sleep(2.2)  # let the stalled request run out on the fake's side
    [row] = await outbox_rows(chat)
    assert row["status"] == "pending" and row["claimed_until"] is not None

    fresh = dispatcher(chat, clock, claim_s=60)
    assert await fresh.run_once() == 0  # still claimed by the dead dispatcher
    clock.advance(61)
    assert await fresh.run_once() == 1
    assert await fresh.run_once() == 0

    [reply] = chat.received("wh1")
    assert "发货" in reply
    [row] = await outbox_rows(chat)
    assert row["status"] == "delivered"


async def push(chat: Chat, userid: str, texts: list[str], at: datetime) -> None:
    async with UnitOfWork(chat.app[DB]) as uow:
        for text in texts:
            await uow.enqueue(channel="chat", kind="message", recipient=userid, payload=to_payload(Reply(text)),
                              at=at)
        await uow.commit()


def assert_every_push_mentioned_once(received: list[str], pushes: list[str]) -> None:
    for text in pushes:
        assert sum(text in message for message in received) == 1, f"{text} in {received}"


async def test_fifty_pushes_at_once_arrive_as_at_most_thirty_messages_with_a_digest(chat: Chat) -> None:
    """The app's own senders and limiter, on real time: 50 rows committed together, delivered at once."""
    await chat.add_user("wh1", "王强", "warehouse", store="SH01")
    pushes = [f"推送#{i:02d}" for i in range(1, 51)]
    await push(chat, "wh1", pushes, datetime.now(UTC))
    d = OutboxDispatcher(chat.app[DB], senders(chat.app))

    while await d.run_once():
        pass

    received = chat.received("wh1")
    assert len(received) <= 30
    singles, digest = received[:-1], received[-1]
    assert all(not s.startswith(DIGEST_HEADER) for s in singles)
    assert digest.startswith(f"{DIGEST_HEADER}{50 - len(singles)} 条新通知（已合并）：")
    assert_every_push_mentioned_once(received, pushes)
    assert {r["status"] for r in await outbox_rows(chat)} == {"delivered"}


async def test_fifty_pushes_over_a_minute_never_exceed_thirty_a_minute(chat: Chat) -> None:
    """One push a second, a dispatcher pass after each, on a clock shared by dispatcher and limiter."""
    await chat.add_user("wh1", "王强", "warehouse", store="SH01")
    clock = Clock()
    chat.fake.set_clock(lambda: clock().timestamp())  # WeCom's minute passes on the test's clock too
    app = chat.app
    limiter = RecipientLimiter(app[DB], clock=clock)
    chat_sender = WeComChatSender(app[WECOM_CLIENT], chat.settings.wecom.agent_id, limiter)
    d = OutboxDispatcher(app[DB], {"chat": chat_sender}, clock=clock)
    start, sent_at = clock(), list[datetime]()
    pushes = [f"推送#{i:02d}" for i in range(1, 51)]

    async def dispatch_pass() -> None:
        before = len(chat.fake.messages)
        while await d.run_once():
            pass
        sent_at.extend(clock() for _ in range(len(chat.fake.messages) - before))

    for text in pushes:
        await push(chat, "wh1", [text], clock())
        await dispatch_pass()
        clock.advance(1)
    while clock() < start + timedelta(seconds=130):
        await dispatch_pass()
        clock.advance(1)

    received = chat.received("wh1")
    assert all(sum(s <= x < s + timedelta(seconds=60) for x in sent_at) <= 30 for s in sent_at)
    assert sum(s < start + timedelta(seconds=60) for s in sent_at) <= 30  # within the first minute
    digests = [m for m in received if m.startswith(DIGEST_HEADER)]
    assert digests, received
    assert_every_push_mentioned_once(received, pushes)
    assert {r["status"] for r in await outbox_rows(chat)} == {"delivered"}


async def test_the_same_question_twice_gets_two_visible_answers_and_a_resend_stays_hidden(chat: Chat) -> None:
    """WeCom's duplicate check hides identical content for 180 s: the second answer names its question's time."""
    await chat.add_user("sup1", "李敏", "supervisor")
    for _ in range(2):
        assert await chat.say("sup1", "待办") == 200
        await chat.settle()

    first, second = chat.received("sup1")
    assert second.startswith(first) and second != first
    assert re.fullmatch(r"（回复 \d\d:\d\d:\d\d 的消息）", second[len(first):].strip())

    # The process dies after WeCom took the second answer, before the row was marked delivered: sent again, and
    # it is the same message to the byte, so WeCom hides it.
    answer = max(r["id"] for r in await outbox_rows(chat))  # type: ignore[type-var]
    async with chat.app[DB].engine.begin() as conn:
        await conn.execute(t.outbox.update().where(t.outbox.c.id == answer).values(status="pending", delivered_at=None))
    sent_before = len(chat.fake.messages)
    await chat.settle()
    assert [r["status"] for r in await outbox_rows(chat)] == ["delivered", "delivered"]
    assert len(chat.fake.messages) == sent_before == 2
