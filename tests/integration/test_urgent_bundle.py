"""A surge of exception pushes to one person at their per-minute cap: every order named in the same pass, in
bundles of urgent rows only, nothing over the cap (compressed clock, fake WeCom)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from domain.chat import Button, Card, Reply
from domain.outbox import ChatPush
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.tokens import DbTokenCache
from integrations.db.uow import UnitOfWork
from integrations.delivery import OutboxDispatcher
from integrations.delivery.limiter import RecipientLimiter
from integrations.delivery.wecom_sender import WeComChatSender
from integrations.fakes.wecom import FakeWeCom
from integrations.wecom.client import WeComClient
from tests.integration.helpers import rows
from tests.integration.test_outbox_delivery import AGENT_ID, CORP_ID, SECRET, Clock

BUNDLE_HEADER = "条异常待处理"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeWeCom]:
    async with FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID,
                         clock=lambda: clock().timestamp()) as server:
        yield server


@pytest.fixture
async def dispatcher(fake: FakeWeCom, db: Database, clock: Clock) -> AsyncIterator[OutboxDispatcher]:
    async with httpx.AsyncClient(timeout=5) as http:
        client = WeComClient(http, api_base=fake.base_url, corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID,
                             token_cache=DbTokenCache(db))
        sender = WeComChatSender(client, AGENT_ID, RecipientLimiter(db, clock=clock, urgent_reserve=5))
        yield OutboxDispatcher(db, {"chat": sender}, clock=clock)


async def send(db: Database, clock: Clock, *pushes: ChatPush) -> None:
    async with UnitOfWork(db) as uow:
        await uow.send(*pushes, at=clock())
        await uow.commit()


def shown(fake: FakeWeCom, userid: str) -> list[str]:
    """What the person saw, in order: a text's or markdown's content, else the whole message."""
    out = []
    for m in fake.messages:
        if m["touser"] == userid:
            plain = m["msgtype"] in ("text", "markdown")
            out.append(m[m["msgtype"]]["content"] if plain else json.dumps(m, ensure_ascii=False))
    return out


def out_of_stock(n: int) -> ChatPush:
    text = (f'<font color="warning">缺货</font> 订单 OB{n:08d} 无门店能发：BP-001。'
            "补货后发送：拣货前先在库存里更新数量，系统会重新分配。")
    return ChatPush("sup1", Reply(text, markdown=True), f"oos:OB{n:08d}:sup1", urgent=True)


async def at_routine_cap(db: Database, clock: Clock, d: OutboxDispatcher, fake: FakeWeCom) -> None:
    for i in range(25):  # one a second: the routine share of the minute
        await send(db, clock, ChatPush("sup1", Reply(f"例行#{i:02d}")))
        await d.run_once()
        clock.advance(1)
    assert len(shown(fake, "sup1")) == 25


async def test_a_surge_at_the_cap_names_every_order_in_the_same_pass(
    db: Database, fake: FakeWeCom, dispatcher: OutboxDispatcher, clock: Clock
) -> None:
    await at_routine_cap(db, clock, dispatcher, fake)
    await send(db, clock, ChatPush("sup1", Reply("例行#25")))  # queued before the surge, over the routine share
    for n in range(1, 31):  # a surge on one SKU: one commit per order, as the orders arrive
        await send(db, clock, out_of_stock(n))

    await dispatcher.run_once()  # no time passes on the test's clock

    new = shown(fake, "sup1")[25:]
    assert 1 <= len(new) <= 5  # the urgent reserve of the minute, and no more
    assert all(f"OB{n:08d}" in "".join(new) for n in range(1, 31))  # every order named, none left waiting
    assert all(BUNDLE_HEADER in m for m in new) and not any("例行" in m for m in new)  # never with routine rows
    assert fake.dropped == []
    urgent = await rows(db, t.outbox, t.outbox.c.urgent.is_(True))
    assert {r["status"] for r in urgent} == {"delivered"}
    [routine] = await rows(db, t.outbox, t.outbox.c.payload["text"].as_string() == "例行#25")
    assert routine["status"] == "pending"  # still waits for the minute: nothing routine jumped the cap


async def test_a_bundle_gives_each_card_in_full(
    db: Database, fake: FakeWeCom, dispatcher: OutboxDispatcher, clock: Clock
) -> None:
    await at_routine_cap(db, clock, dispatcher, fake)
    cards = [Card(f"物流冲突 · OB{n:08d}", "快递显示已签收，但仓库尚未出库（当前「已打包」）", f"logistics-conflict-OB{n:08d}",
                  buttons=(Button(f"release C-{n}", "核实后解冻"),), fields=(("运单", f"SF{n:010d}"),), highlight=True)
             for n in range(1, 8)]
    await send(db, clock, *(ChatPush("sup1", card, urgent=True) for card in cards))

    await dispatcher.run_once()

    [bundle] = shown(fake, "sup1")[25:]
    assert bundle.startswith("**7 条异常待处理**")
    for n in range(1, 8):
        assert f"物流冲突 · OB{n:08d}" in bundle and f"运单：SF{n:010d}" in bundle
        assert "快递显示已签收，但仓库尚未出库" in bundle and "回复：" in bundle
    assert fake.dropped == []


async def test_urgent_rows_go_one_by_one_while_the_slots_carry_them(
    db: Database, fake: FakeWeCom, dispatcher: OutboxDispatcher, clock: Clock
) -> None:
    await send(db, clock, *(out_of_stock(n) for n in range(1, 4)))

    await dispatcher.run_once()

    assert [m.count("OB0000") for m in shown(fake, "sup1")] == [1, 1, 1]
    assert not any(BUNDLE_HEADER in m for m in shown(fake, "sup1"))


async def test_a_bundle_takes_rows_another_pass_holds_and_that_pass_skips_them(
    db: Database, fake: FakeWeCom, dispatcher: OutboxDispatcher, clock: Clock
) -> None:
    await at_routine_cap(db, clock, dispatcher, fake)
    await send(db, clock, *(out_of_stock(n) for n in range(1, 9)))
    other = OutboxDispatcher(db, dispatcher._senders, clock=clock, batch=4)  # another replica, same WeCom
    held = await other._claim(clock(), 4)

    await dispatcher.run_once()
    for row in held:  # the other replica gets to its rows only now
        await other._deliver(row)

    new = shown(fake, "sup1")[25:]
    assert len(new) == 1
    assert all("".join(new).count(f"OB{n:08d}") == 1 for n in range(1, 9))  # each named once
    assert fake.dropped == []
