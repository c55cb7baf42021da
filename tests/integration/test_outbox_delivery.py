"""Outbox delivery end to end: committed rows → dispatcher → WeCom senders → a real fake WeCom server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event as sqlalchemy_event

from domain.chat import Button, Card, Reply, to_payload
from domain.chat_commands import COMMANDS
from domain.outbox import ChatPush
from domain.users import User
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.tokens import DbTokenCache
from integrations.db.uow import UnitOfWork
from integrations.delivery import DeadRowWarnings, OutboxDispatcher, OutboxRow, Sender
from integrations.delivery.lanes import Lanes
from integrations.delivery.limiter import GROUP_ROBOT_LIMITS, RecipientLimiter, command_text
from integrations.delivery.wecom_sender import WeComChatSender, WeComGroupSender, group_line
from integrations.fakes.wecom import FakeWeCom
from integrations.wecom.client import WeComClient
from tests.integration.helpers import rows

CORP_ID = "ww-outbox-corp"
SECRET = "outbox-secret"
AGENT_ID = 1000009
DIGEST_HEADER = "您有"


class Clock:
    """The dispatcher's and limiter's time, moved by the test so back-offs and windows pass at once."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Counting:
    """Wraps a sender and records which rows it was asked to deliver."""

    def __init__(self, inner: Sender) -> None:
        self.inner = inner
        self.delivered: list[int] = []

    async def deliver(self, row: OutboxRow) -> None:
        self.delivered.append(row.id)
        await self.inner.deliver(row)


class DiesAfterSending:
    """WeCom accepts the message, then the process dies before the row is marked delivered."""

    def __init__(self, inner: Sender) -> None:
        self.inner = inner

    async def deliver(self, row: OutboxRow) -> None:
        await self.inner.deliver(row)
        raise asyncio.CancelledError


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeWeCom]:
    """On the test's clock: the duplicate check's interval and the per-member cap pass as the test moves it."""
    fake_clock = lambda: clock().timestamp()  # noqa: E731
    async with FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID, clock=fake_clock) as server:
        yield server


@pytest.fixture
async def client(fake: FakeWeCom, db: Database) -> AsyncIterator[WeComClient]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield WeComClient(
            http,
            api_base=fake.base_url,
            corp_id=CORP_ID,
            secret=SECRET,
            agent_id=AGENT_ID,
            token_cache=DbTokenCache(db),
        )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def chat_sender(db: Database, client: WeComClient, clock: Clock) -> WeComChatSender:
    # No reserve: these tests hold routine rows to the full cap (the reserve has its own tests below).
    return WeComChatSender(client, AGENT_ID, RecipientLimiter(db, clock=clock, urgent_reserve=0))


def dispatcher(db: Database, sender: Sender, clock: Clock, **options: Any) -> OutboxDispatcher:
    return OutboxDispatcher(db, {"chat": sender}, clock=clock, **options)


async def push(
    db: Database, at: datetime, *items: tuple[str, Reply | Card], channel: str = "chat"
) -> list[int]:
    async with UnitOfWork(db) as uow:
        for recipient, item in items:
            kind = "card" if isinstance(item, Card) else "message"
            await uow.enqueue(
                channel=channel, kind=kind, recipient=recipient, payload=to_payload(item), at=at
            )
        await uow.commit()
    return [r["id"] for r in await rows(db, t.outbox)][-len(items) :]


async def add_users(db: Database, *users: User) -> None:
    async with UnitOfWork(db) as uow:
        for user in users:
            await uow.users.upsert(user, datetime.now(UTC))
        await uow.commit()


async def outbox(db: Database, *where: Any) -> list[dict[str, Any]]:
    return await rows(db, t.outbox, *where)


def texts_to(fake: FakeWeCom, userid: str) -> list[str]:
    return [m["text"]["content"] for m in fake.messages if m["touser"] == userid and m["msgtype"] == "text"]


async def test_committed_row_is_delivered_once(
    db: Database, fake: FakeWeCom, chat_sender: WeComChatSender, clock: Clock
) -> None:
    [row_id] = await push(db, clock(), ("wh1", Reply("OB00000012 待拣货")))
    d = dispatcher(db, chat_sender, clock)

    assert await d.run_once() == 1
    assert await d.run_once() == 0

    assert texts_to(fake, "wh1") == ["OB00000012 待拣货"]
    [row] = await outbox(db)
    assert (row["id"], row["status"], row["attempts"]) == (row_id, "delivered", 0)
    assert row["delivered_at"] is not None and row["claimed_until"] is None
    assert await d.backlog() == {}


async def test_transient_failures_are_retried_until_the_message_arrives_once(
    db: Database, fake: FakeWeCom, chat_sender: WeComChatSender, clock: Clock
) -> None:
    fake.fail_next(errcode=42001)
    fake.fail_next(errcode=-1, times=3)
    fake.fail_next(status=500)
    await push(db, clock(), ("wh1", Reply("请拣货 OB00000013")))
    d = dispatcher(db, chat_sender, clock)

    for attempt in range(1, 5):
        assert await d.run_once() == 1
        [row] = await outbox(db)
        assert (row["status"], row["attempts"]) == ("pending", attempt)
        assert await d.run_once() == 0  # backing off: not due yet
        clock.advance(400)
    assert "HTTP 500" in row["last_error"]
    assert await d.run_once() == 1

    assert texts_to(fake, "wh1") == ["请拣货 OB00000013"]
    [row] = await outbox(db)
    assert (row["status"], row["attempts"]) == ("delivered", 4)


async def test_crash_after_send_redelivers_and_wecom_shows_it_once(
    db: Database, fake: FakeWeCom, chat_sender: WeComChatSender, clock: Clock
) -> None:
    await push(db, clock(), ("wh1", Reply("OB00000014 已发货")))
    with pytest.raises(asyncio.CancelledError):
        await dispatcher(db, DiesAfterSending(chat_sender), clock, claim_s=60).run_once()
    [row] = await outbox(db)
    assert row["status"] == "pending" and row["claimed_until"] is not None

    survivor = Counting(chat_sender)
    fresh = dispatcher(db, survivor, clock, claim_s=60)
    assert await fresh.run_once() == 0  # still claimed by the dead process
    clock.advance(62)
    assert await fresh.run_once() == 1

    assert len(survivor.delivered) == 1  # really sent a second time...
    assert texts_to(fake, "wh1") == ["OB00000014 已发货"]  # ...and WeCom's duplicate check showed it once
    [row] = await outbox(db)
    assert row["status"] == "delivered"


async def test_two_dispatchers_send_each_row_once(
    db: Database, fake: FakeWeCom, chat_sender: WeComChatSender, clock: Clock
) -> None:
    if db.is_sqlite:
        pytest.skip("concurrent dispatchers need PostgreSQL's FOR UPDATE SKIP LOCKED")
    ids = await push(db, clock(), *((f"u{i % 20:02d}", Reply(f"任务 {i:03d}")) for i in range(200)))
    first, second = Counting(chat_sender), Counting(chat_sender)
    d1, d2 = dispatcher(db, first, clock), dispatcher(db, second, clock)

    rounds = [await asyncio.gather(d1.run_once(), d2.run_once())]
    while sum(rounds[-1]):
        rounds.append(await asyncio.gather(d1.run_once(), d2.run_once()))

    assert all(rounds[0])  # both worked at the same time
    assert sorted(first.delivered + second.delivered) == ids
    assert sorted(m["text"]["content"] for m in fake.messages) == [f"任务 {i:03d}" for i in range(200)]
    assert {r["status"] for r in await outbox(db)} == {"delivered"}


async def test_permanent_failure_kills_the_row_and_tells_the_managers(
    db: Database, fake: FakeWeCom, chat_sender: WeComChatSender, clock: Clock
) -> None:
    await add_users(
        db,
        User("m1", "周经理", frozenset({"manager"})),
        User("m2", "吴经理", frozenset({"manager", "finance"})),
        User("wh1", "王强", frozenset({"warehouse"}), "SH01"),
    )
    fake.fail_next(errcode=40008)
    [row_id] = await push(db, clock(), ("wh1", Reply("OB00000015 待打包")))
    report = DeadRowWarnings(db, channels={"chat"}, clock=clock)
    d = dispatcher(db, chat_sender, clock, on_dead=report)

    await d.run_once()
    assert await report.report() == 1

    [dead] = await outbox(db, t.outbox.c.id == row_id)
    assert dead["status"] == "dead" and "40008" in dead["last_error"]
    warnings = await outbox(db, t.outbox.c.dedup_key.like(f"dead:{row_id}:%"))
    assert sorted((w["recipient"], w["dedup_key"]) for w in warnings) == [
        ("m1", f"dead:{row_id}:m1"),
        ("m2", f"dead:{row_id}:m2"),
    ]
    assert await report.report() == 0  # told once only
    assert len(await outbox(db, t.outbox.c.dedup_key.like(f"dead:{row_id}:%"))) == 2

    assert await d.run_once() == 2
    for manager in ("m1", "m2"):
        [text] = texts_to(fake, manager)
        assert f"#{row_id}" in text and "wh1" in text
    assert texts_to(fake, "wh1") == []


async def test_retries_stop_at_max_attempts(
    db: Database, fake: FakeWeCom, chat_sender: WeComChatSender, clock: Clock
) -> None:
    fake.fail_next(errcode=-1, times=5)
    dead: list[OutboxRow] = []

    async def remember(row: OutboxRow) -> None:
        dead.append(row)

    await push(db, clock(), ("wh1", Reply("OB00000016")))
    d = dispatcher(db, chat_sender, clock, max_attempts=3, on_dead=remember)
    for _ in range(4):
        await d.run_once()
        clock.advance(400)

    [row] = await outbox(db)
    assert (row["status"], row["attempts"]) == ("dead", 3)
    assert [(r.id, r.attempts) for r in dead] == [(row["id"], 3)]
    assert fake.messages == []


async def test_fifty_pushes_in_a_minute_respect_the_limit_and_lose_nothing(
    db: Database, fake: FakeWeCom, chat_sender: WeComChatSender, clock: Clock
) -> None:
    start = clock()
    d = dispatcher(db, chat_sender, clock)
    sent_at: list[datetime] = []
    for i in range(1, 51):  # one push a second, each followed by a dispatcher pass
        await push(db, clock(), ("wh1", Reply(f"推送#{i:02d}")))
        await _pass(d, fake, sent_at, clock)
        clock.advance(1)
    while clock() < start + timedelta(seconds=130):
        await _pass(d, fake, sent_at, clock)
        clock.advance(1)

    texts = texts_to(fake, "wh1")
    assert all(sum(s <= t < s + timedelta(seconds=60) for t in sent_at) <= 30 for s in sent_at)
    assert texts[:30] == [f"推送#{i:02d}" for i in range(1, 31)]
    [digest] = texts[30:]
    assert digest.startswith("您有 20 条新通知（已合并）：")
    assert all(f"推送#{i:02d}" in digest for i in range(31, 51))
    carrier = await outbox(db, t.outbox.c.payload["text"].as_string() == "推送#31")
    merged = await outbox(db, t.outbox.c.last_error == f"merged into digest {carrier[0]['id']}")
    assert len(merged) == 19
    assert {r["status"] for r in await outbox(db)} == {"delivered"}


async def test_a_push_past_the_cap_waits_exactly_until_the_oldest_send_leaves_the_window(
    db: Database, fake: FakeWeCom, chat_sender: WeComChatSender, clock: Clock
) -> None:
    """30 sends a minute, one a second from `start`: the 31st push is put off until `start` + 60 s, when the first
    of the 30 leaves the window — not earlier (the cap would be broken) and not later (it would wait for nothing)."""
    start = clock()
    d = dispatcher(db, chat_sender, clock)
    for i in range(1, 31):
        await push(db, clock(), ("wh1", Reply(f"推送#{i:02d}")))
        await d.run_once()
        clock.advance(1)
    [late] = await push(db, clock(), ("wh1", Reply("推送#31")))
    await d.run_once()

    assert len(texts_to(fake, "wh1")) == 30
    [row] = await outbox(db, t.outbox.c.id == late)
    assert row["status"] == "pending" and row["last_error"].startswith("deferred")
    assert row["next_attempt_at"] == start + timedelta(seconds=60)


async def _pass(d: OutboxDispatcher, fake: FakeWeCom, sent_at: list[datetime], clock: Clock) -> None:
    before = len(fake.messages)
    await d.run_once()
    sent_at.extend(clock() for _ in range(len(fake.messages) - before))


async def test_burst_spends_the_last_slot_on_one_digest(
    db: Database, fake: FakeWeCom, chat_sender: WeComChatSender, clock: Clock
) -> None:
    card = Card(
        "退款审批",
        "订单 OB00000017 退款 ¥199.00",
        "AS000012",
        buttons=(Button("approve AS000012", "同意"), Button("reject AS000012", "拒绝", 2)),
    )
    items: list[tuple[str, Reply | Card]] = [("sv1", Reply(f"提醒#{i:02d}")) for i in range(1, 50)]
    items.insert(39, ("sv1", card))
    await push(db, clock(), *items)

    await dispatcher(db, chat_sender, clock).run_once()

    texts = texts_to(fake, "sv1")
    assert len(texts) == 30
    assert texts[:29] == [f"提醒#{i:02d}" for i in range(1, 30)]
    assert texts[29].startswith("您有 21 条新通知（已合并）：")
    assert "退款审批 — 订单 OB00000017 退款 ¥199.00（回复：同意 AS000012 / 拒绝 AS000012）" in texts[29]
    assert all(f"提醒#{i:02d}" in texts[29] for i in range(30, 50))
    assert {r["status"] for r in await outbox(db)} == {"delivered"}


async def test_group_robot_is_held_to_twenty_a_minute(
    db: Database, fake: FakeWeCom, client: WeComClient, clock: Clock
) -> None:
    limiter = RecipientLimiter(
        db, channel="wecom_group", limits=GROUP_ROBOT_LIMITS, line=group_line, clock=clock, urgent_reserve=0
    )
    d = OutboxDispatcher(db, {"wecom_group": WeComGroupSender(client, limiter)}, clock=clock)
    async with UnitOfWork(db) as uow:
        for i in range(25):
            payload = {"msgtype": "text", "text": {"content": f"群通知#{i:02d}"}}
            await uow.enqueue(
                channel="wecom_group", kind="alert", recipient="robot-1", payload=payload, at=clock()
            )
        await uow.commit()

    await d.run_once()

    sent = [m["text"]["content"] for m in fake.webhook_messages]
    assert fake.webhook_keys == ["robot-1"] * 20
    assert sent[:19] == [f"群通知#{i:02d}" for i in range(19)]
    assert sent[19].startswith("您有 6 条新通知（已合并）：")
    assert {r["status"] for r in await outbox(db)} == {"delivered"}


async def test_card_update_goes_to_update_template_card(
    db: Database, fake: FakeWeCom, chat_sender: WeComChatSender, clock: Clock
) -> None:
    code = fake.issue_response_code()
    async with UnitOfWork(db) as uow:
        payload = {"userids": ["sv1"], "response_code": code, "replace_text": "已同意 · 李敏 10:42"}
        await uow.enqueue(channel="chat", kind="card_update", recipient="sv1", payload=payload, at=clock())
        await uow.commit()

    await dispatcher(db, chat_sender, clock).run_once()

    assert [(u["response_code"], u["button"]["replace_name"]) for u in fake.card_updates] == [
        (code, "已同意 · 李敏 10:42")
    ]
    assert fake.messages == []


async def test_channel_without_sender_stays_pending_in_backlog(
    db: Database, fake: FakeWeCom, chat_sender: WeComChatSender, clock: Clock
) -> None:
    await push(db, clock(), ("13800000000", Reply("您的订单已发货")), channel="sms")
    await push(db, clock(), ("wh1", Reply("OB00000018 待质检")))
    d = dispatcher(db, chat_sender, clock)

    assert await d.run_once() == 1
    assert await d.run_once() == 0

    [sms] = await outbox(db, t.outbox.c.channel == "sms")
    assert (sms["status"], sms["claimed_until"], sms["attempts"]) == ("pending", None, 0)
    assert await d.backlog() == {"sms": 1}
    assert texts_to(fake, "wh1") == ["OB00000018 待质检"]


async def test_replicas_share_one_access_token(db: Database, fake: FakeWeCom, client: WeComClient) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        other = WeComClient(
            http,
            api_base=fake.base_url,
            corp_id=CORP_ID,
            secret=SECRET,
            agent_id=AGENT_ID,
            token_cache=DbTokenCache(db),
        )
        await client.send({"touser": "a", "agentid": AGENT_ID, "msgtype": "text", "text": {"content": "1"}})
        await other.send({"touser": "b", "agentid": AGENT_ID, "msgtype": "text", "text": {"content": "2"}})
    assert fake.token_requests == 1
    assert [m["touser"] for m in fake.messages] == ["a", "b"]
    [token] = await rows(db, t.api_tokens)
    assert token["key"] == f"{CORP_ID}:{AGENT_ID}"


def test_digest_lines_say_a_button_as_a_person_would_type_it() -> None:
    for spec in COMMANDS.typed:
        assert command_text(f"{spec.name} AS000012") == f"{spec.zh} AS000012"
    assert command_text("tasks") == "待办"


async def test_notify_wakes_the_running_dispatcher_before_its_poll(
    db: Database, fake: FakeWeCom, chat_sender: WeComChatSender, clock: Clock
) -> None:
    stop, sent = asyncio.Event(), asyncio.Event()

    class Signalling:
        async def deliver(self, row: OutboxRow) -> None:
            await chat_sender.deliver(row)
            sent.set()

    d = dispatcher(db, Signalling(), clock)
    running = asyncio.create_task(d.run_forever(stop, idle_s=60))
    await asyncio.sleep(0.2)  # the first pass found nothing; it now waits up to a minute

    await push(db, clock(), ("wh1", Reply("OB00000019 待拣货")))
    d.notify()
    async with asyncio.timeout(5):
        await sent.wait()
        stop.set()
        await running

    assert texts_to(fake, "wh1") == ["OB00000019 待拣货"]


class Overlaps:
    """A sender that takes a while and records how many deliveries overlap, in all and per recipient."""

    def __init__(self) -> None:
        self.order: dict[str, list[int]] = {}
        self.now: dict[str, int] = {}
        self.most = 0
        self.most_per_recipient = 0

    async def deliver(self, row: OutboxRow) -> None:
        self.order.setdefault(row.recipient, []).append(row.id)
        self.now[row.recipient] = self.now.get(row.recipient, 0) + 1
        self.most = max(self.most, sum(self.now.values()))
        self.most_per_recipient = max(self.most_per_recipient, self.now[row.recipient])
        await asyncio.sleep(0.02)
        self.now[row.recipient] -= 1


@pytest.mark.parametrize("max_in_flight", [2, 16])
async def test_a_pass_sends_recipients_concurrently_and_each_recipients_rows_in_order(
    db: Database, clock: Clock, max_in_flight: int
) -> None:
    ids = await push(db, clock(), *((f"u{i % 4}", Reply(f"任务 {i:02d}")) for i in range(12)))
    sender = Overlaps()
    d = dispatcher(db, sender, clock, max_in_flight=max_in_flight)

    assert await d.run_once() == 12

    assert sender.most == min(4, max_in_flight)
    assert sender.most_per_recipient == 1
    assert sender.order == {f"u{k}": ids[k::4] for k in range(4)}
    assert {r["status"] for r in await outbox(db)} == {"delivered"}


async def test_row_merged_elsewhere_after_the_claim_is_not_sent_again(
    db: Database, fake: FakeWeCom, chat_sender: WeComChatSender, clock: Clock
) -> None:
    first, second = await push(db, clock(), ("wh1", Reply("第一条")), ("wh1", Reply("第二条")))

    class MergesTheSecond:
        """While the first row is sent, another pass's digest takes the second (already claimed) row."""

        async def deliver(self, row: OutboxRow) -> None:
            if row.id == first:
                async with db.engine.begin() as conn:
                    await conn.execute(
                        t.outbox.update()
                        .where(t.outbox.c.id == second)
                        .values(status="delivered", last_error="merged into digest 999", claimed_until=None)
                    )
            await chat_sender.deliver(row)

    assert await dispatcher(db, MergesTheSecond(), clock).run_once() == 2

    assert texts_to(fake, "wh1") == ["第一条"]
    [merged] = await outbox(db, t.outbox.c.id == second)
    assert (merged["status"], merged["last_error"]) == ("delivered", "merged into digest 999")


async def test_token_is_kept_in_memory_and_a_refused_one_is_replaced_from_the_database(
    db: Database, fake: FakeWeCom, client: WeComClient
) -> None:
    token_reads: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "api_tokens" in statement and statement.lstrip().upper().startswith("SELECT"):
            token_reads.append(statement)

    def message(to: str) -> dict[str, Any]:
        return {"touser": to, "agentid": AGENT_ID, "msgtype": "text", "text": {"content": to}}

    sqlalchemy_event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        await client.send(message("a"))
        reads_for_the_first = len(token_reads)
        for _ in range(5):
            await client.send(message("a"))
        assert len(token_reads) == reads_for_the_first  # later sends do not read the table

        fake.expire_tokens()
        async with httpx.AsyncClient(timeout=5) as http:
            other = WeComClient(
                http,
                api_base=fake.base_url,
                corp_id=CORP_ID,
                secret=SECRET,
                agent_id=AGENT_ID,
                token_cache=DbTokenCache(db),
            )
            await other.send(message("b"))  # refused, fetches a new token and stores it
        assert fake.token_requests == 2
        await client.send(message("c"))  # refused too: takes the other replica's token from the table
    finally:
        sqlalchemy_event.remove(db.engine.sync_engine, "before_cursor_execute", count)

    assert fake.token_requests == 2
    assert [m["touser"] for m in fake.messages] == ["a"] * 6 + ["b", "c"]


# Priorities: an exception push (ChatPush.urgent) within the per-person cap, with the default reserve of 5.


@pytest.fixture
def reserved_sender(client: WeComClient, db: Database, clock: Clock) -> WeComChatSender:
    return WeComChatSender(client, AGENT_ID, RecipientLimiter(db, clock=clock, urgent_reserve=5))


async def send_pushes(db: Database, at: datetime, *pushes: ChatPush) -> None:
    async with UnitOfWork(db) as uow:
        await uow.send(*pushes, at=at)
        await uow.commit()


def shown_to(fake: FakeWeCom, userid: str) -> list[str]:
    """What the person saw, in order: a text's content, a card's title."""
    return [m["text"]["content"] if m["msgtype"] == "text" else json.dumps(m, ensure_ascii=False)
            for m in fake.messages if m["touser"] == userid]


RELABEL = Card("改地址 · 需换面单 OB00000099", "作废旧面单，按草稿打印新面单", "relabel-OB00000099-3")


async def test_urgent_card_reaches_a_person_at_their_routine_limit(
    db: Database, fake: FakeWeCom, reserved_sender: WeComChatSender, clock: Clock
) -> None:
    d = dispatcher(db, reserved_sender, clock)
    for i in range(25):  # one a second: 25 routine messages, the routine limit of the minute
        await send_pushes(db, clock(), ChatPush("wh1", Reply(f"回复#{i:02d}")))
        await d.run_once()
        clock.advance(1)
    await send_pushes(db, clock(), ChatPush("wh1", Reply("回复#25")))
    await d.run_once()
    assert len(shown_to(fake, "wh1")) == 25  # the 26th routine reply waits for the minute

    await send_pushes(db, clock(), ChatPush("wh1", RELABEL, "relabel:OB00000099:3:wh1", urgent=True))
    await d.run_once()

    shown = shown_to(fake, "wh1")
    assert len(shown) == 26 and "OB00000099" in shown[-1]
    [card] = await outbox(db, t.outbox.c.kind == "card")
    assert card["status"] == "delivered" and card["urgent"]
    assert fake.dropped == []


async def test_urgent_row_is_never_merged_into_a_digest(
    db: Database, fake: FakeWeCom, reserved_sender: WeComChatSender, clock: Clock
) -> None:
    routine = [ChatPush("wh1", Reply(f"推送#{i:02d}")) for i in range(40)]
    urgent = [ChatPush("wh1", Reply(f"异常#{i}"), urgent=True) for i in range(3)]
    await send_pushes(db, clock(), *routine[:20], urgent[0], *routine[20:30], urgent[1], *routine[30:], urgent[2])
    d = dispatcher(db, reserved_sender, clock)
    start = clock()
    while clock() < start + timedelta(seconds=200):
        await d.run_once()
        clock.advance(1)

    shown = shown_to(fake, "wh1")
    digests = [s for s in shown if s.startswith(DIGEST_HEADER)]
    assert digests and not any("异常#" in s for s in digests)
    assert [s for s in shown if s.startswith("异常#")] == ["异常#0", "异常#1", "异常#2"]
    assert all(any(f"推送#{i:02d}" in s for s in shown) for i in range(40))  # nothing lost
    urgent_rows = await outbox(db, t.outbox.c.urgent.is_(True))
    assert [(r["status"], r["last_error"]) for r in urgent_rows] == [("delivered", "")] * 3
    assert fake.dropped == []


async def test_urgent_rows_go_before_routine_rows_queued_earlier(
    db: Database, fake: FakeWeCom, reserved_sender: WeComChatSender, clock: Clock
) -> None:
    await send_pushes(db, clock(), *[ChatPush(u, Reply(f"{u} 例行#{i}")) for i in range(3) for u in ("wh1", "wh2")])
    clock.advance(5)
    await send_pushes(db, clock(), ChatPush("wh1", Reply("wh1 异常")), ChatPush("wh2", RELABEL))  # routine: a control
    await send_pushes(db, clock(), ChatPush("wh1", RELABEL, urgent=True))
    d = dispatcher(db, reserved_sender, clock)

    await d.run_once()

    wh1 = shown_to(fake, "wh1")
    assert "OB00000099" in wh1[0] and wh1[1:] == [f"wh1 例行#{i}" for i in range(3)] + ["wh1 异常"]
    assert "OB00000099" in shown_to(fake, "wh2")[-1]  # not urgent: behind the rows queued before it


async def test_an_urgent_row_joins_its_lane_ahead_of_routine_rows_not_started() -> None:
    sent: list[str] = []
    gate = asyncio.Event()

    async def deliver(row: OutboxRow) -> None:
        if row.id == 1:
            await gate.wait()  # the first routine row is under way
        sent.append(f"{row.id}")

    lanes = Lanes(deliver, max_in_flight=4)
    now = datetime.now(UTC)
    for n, urgent in ((1, False), (2, False), (3, False), (4, True), (5, True)):
        lanes.add(OutboxRow(n, "chat", "message", "wh1", {}, 0, now, urgent=urgent))
    await asyncio.sleep(0)
    gate.set()
    for _ in range(100):
        if not lanes.held:
            break
        await lanes.freed.wait()
        lanes.freed.clear()
    assert sent == ["1", "4", "5", "2", "3"]
