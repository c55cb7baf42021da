"""The Douyin catch-up pull and the API client against the fake gateway, on SQLite and PostgreSQL: a day of
downtime recovered once (injected clock), a page that failed read again without duplicates, the cursor
moved only past stored orders; signed calls, the shop token, errors, buyer data and the order count."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from handlers.bus import MessageBus
from handlers.douyin_orders import CatchUpDouyinOrders
from integrations.channels.douyin import DouyinFeed
from integrations.channels.douyin.client import DouyinClient, DouyinRejected, DouyinRetryable
from integrations.channels.douyin.mapping import keys_of, to_create_order
from integrations.channels.douyin.signature import api_sign, param_json
from integrations.db import tables as t
from integrations.db.channel_cursors import ChannelCursors
from integrations.db.engine import Database
from integrations.fakes.douyin import SEARCH_PATH, FakeDouyin
from integrations.tokens import MemoryTokenCache
from tests.integration.helpers import rows, stock

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


class Now:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
async def fake() -> AsyncIterator[FakeDouyin]:
    async with FakeDouyin() as server:
        yield server


@pytest.fixture
async def client(fake: FakeDouyin) -> AsyncIterator[DouyinClient]:
    async with httpx.AsyncClient(timeout=0.5) as http:
        yield DouyinClient(http, api_base=fake.base_url, app_key=fake.app_key, app_secret=fake.app_secret,
                           shop_id=fake.shop_id, token_cache=MemoryTokenCache())


@pytest.fixture
def now(bus: MessageBus, db: Database, client: DouyinClient) -> Now:
    clock = Now(START)
    bus.deps.clock = clock
    bus.deps.douyin = DouyinFeed(client, ChannelCursors(db))
    return clock


def seed(fake: FakeDouyin, count: int, since: datetime, span: timedelta, first: int = 0) -> list[str]:
    """`count` orders updated evenly over `span` from `since`, a few sharing one second."""
    ids = []
    for i in range(first, first + count):
        at = int((since + span * (i - first) / count).timestamp()) // 2 * 2  # pairs share an update second
        order_id = f"69300000000{i:08d}"
        fake.add_order(order_id, created=at, updated=at)
        ids.append(order_id)
    return ids


async def douyin_orders(db: Database) -> list[str]:
    return [r["external_id"] for r in await rows(db, t.orders, t.orders.c.channel == "douyin")]


async def test_a_day_of_downtime_is_recovered_once(bus: MessageBus, db: Database, fake: FakeDouyin, now: Now) -> None:
    await stock(bus, "SH01", "BP-001", 10_000)
    report = await bus.handle(CatchUpDouyinOrders())  # first run: reads a day back, stores the cursor
    assert report.read == 0 and report.cursor
    pushed = seed(fake, 1, START - timedelta(hours=1), timedelta(minutes=1), first=9999)[0]
    await bus.handle(to_create_order(fake.orders[pushed]))  # came by push before the outage
    now.at = START + timedelta(hours=24)  # the service was down for a day
    missed = seed(fake, 350, START, timedelta(hours=23, minutes=58))
    fake.update(pushed, order_status=105)  # a known order updated again meanwhile
    report = await bus.handle(CatchUpDouyinOrders())
    assert report.created == 350 and report.known >= 1 and not report.unmapped
    stored = await douyin_orders(db)
    assert sorted(stored) == sorted([*missed, pushed]) and len(stored) == len(set(stored))
    again = await bus.handle(CatchUpDouyinOrders())
    assert again.created == 0 and sorted(await douyin_orders(db)) == sorted(stored)
    assert await ChannelCursors(db).get("douyin") == str(int((now.at - timedelta(seconds=60)).timestamp()))


async def test_a_failed_page_moves_no_cursor_past_it_and_is_read_again(
    bus: MessageBus, db: Database, fake: FakeDouyin, now: Now
) -> None:
    await ChannelCursors(db).put("douyin", str(int(START.timestamp())), START)
    now.at = START + timedelta(hours=6)
    seeded = seed(fake, 250, START + timedelta(minutes=10), timedelta(hours=5))
    await bus.handle(CatchUpDouyinOrders(page_size=100, max_pages=1))  # stopped after one page: a crash
    cursor = int(await ChannelCursors(db).get("douyin") or 0)
    assert len(await douyin_orders(db)) == 100 and cursor < int(now.at.timestamp()) - 60
    fake.fail_next(status=500, path=SEARCH_PATH)
    with pytest.raises(DouyinRetryable):
        await bus.handle(CatchUpDouyinOrders(page_size=100))
    assert int(await ChannelCursors(db).get("douyin") or 0) == cursor  # nothing stored: the cursor stays
    report = await bus.handle(CatchUpDouyinOrders(page_size=100))
    stored = await douyin_orders(db)
    assert sorted(stored) == sorted(seeded) and report.created == 150


async def test_signed_calls_the_shop_token_and_errors(fake: FakeDouyin, client: DouyinClient) -> None:
    fake.add_order("6930000000000000001")
    detail = await client.order_detail("6930000000000000001")
    assert detail["order_id"] == "6930000000000000001" and fake.tokens_issued == 1
    await client.order_detail("6930000000000000001")
    assert fake.tokens_issued == 1 and fake.refused == []  # the token is kept; every sign was right
    fake.expire_tokens()
    await client.order_detail("6930000000000000001")
    assert fake.tokens_issued == 2
    with pytest.raises(DouyinRejected) as refused:
        await client.order_detail("6930000000000000404")
    assert refused.value.code == 50002
    fake.fail_next(code=90000)
    with pytest.raises(DouyinRetryable):
        await client.order_detail("6930000000000000001")
    fake.stall_next(2.0)
    with pytest.raises(DouyinRetryable):
        await client.order_detail("6930000000000000001")


def test_the_sign_is_the_sdks() -> None:
    """sdk_golang utils.Sign: hmac-sha256(secret, secret + app_key…method…param_json…timestamp…v2 + secret)."""
    import hashlib
    import hmac

    params = {"size": 1, "page": 0, "shop_order_id": "6930000000000000001"}
    assert param_json(params) == '{"page":0,"shop_order_id":"6930000000000000001","size":1}'
    text = "s3cr3t" + "app_keyK1methodorder.orderDetailparam_json" + param_json(params) + "timestamp1700000000v2" + "s3cr3t"
    assert api_sign("K1", "s3cr3t", "order.orderDetail", param_json(params), 1700000000) == \
        hmac.new(b"s3cr3t", text.encode(), hashlib.sha256).hexdigest()


async def test_buyer_data_decrypts_and_matches_by_search_index(fake: FakeDouyin, client: DouyinClient) -> None:
    order = fake.add_order("6930000000000000002", phone="13700001111", name="李四")
    keys = keys_of(order)
    assert keys.phone == "" and keys.phone_index and keys.douyin_buyer
    assert await client.search_index("13700001111") == keys.phone_index  # a known phone matches without decrypting
    plain = await client.decrypt([(order["order_id"], order["encrypt_post_tel"]),
                                  (order["order_id"], order["encrypt_post_receiver"])])
    assert plain == {order["encrypt_post_tel"]: "13700001111", order["encrypt_post_receiver"]: "李四"}


async def test_count_orders_is_douyins_total_for_the_hour(fake: FakeDouyin, client: DouyinClient) -> None:
    seed(fake, 30, START, timedelta(hours=2))
    assert await client.count_orders(START, START + timedelta(hours=1)) == 15
    assert client.system == "douyin"
