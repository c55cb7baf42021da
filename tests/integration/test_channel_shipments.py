"""Channels told back, through the outbox to the fake Douyin gateway and the fake WeChat, on SQLite and PostgreSQL:
a shipped Douyin order is confirmed with order.logisticsAdd (signed, the right order id, company and waybill), a
mini-program order's shipping info is uploaded, REST and K3 orders send nothing, trouble is retried until the platform
has it once, "already shipped" is success, and a final refusal becomes customer service's task with the platform's
own words."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from domain import commands as c
from domain.customers import CustomerKeys
from domain.users import User
from handlers.bus import MessageBus
from integrations.channels.douyin.client import DouyinClient
from integrations.channels.douyin.shipping import DouyinShipConfirm
from integrations.channels.miniprogram.shipping import MiniprogramShippingUpload, WeChatShippingClient
from integrations.channels.shipments import ChannelShipSender, ShipmentDeadRows, revive_unconfigured
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from integrations.delivery.dispatcher import OutboxDispatcher
from integrations.fakes.douyin import SHIP_PATH, FakeDouyin
from integrations.fakes.wechat_mini import UPLOAD_PATH, FakeWeChatMini
from integrations.tokens import MemoryTokenCache
from tests.integration.helpers import drive, rows, stock

DY_ORDER, MINI_ORDER, MCH, OPENID = "6920000000000000001", "MP20261130001", "1900000109", "o-buyer-001"
NO_KEYS = CustomerKeys()


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC) + timedelta(minutes=1)  # after every row the test writes is due

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def douyin() -> AsyncIterator[FakeDouyin]:
    async with FakeDouyin() as fake:
        fake.add_order(DY_ORDER)
        yield fake


@pytest.fixture
async def wechat() -> AsyncIterator[FakeWeChatMini]:
    async with FakeWeChatMini() as fake:
        fake.add_payment(MCH, MINI_ORDER, OPENID)
        yield fake


@pytest.fixture
async def sender(douyin: FakeDouyin, wechat: FakeWeChatMini, clock: Clock) -> AsyncIterator[ChannelShipSender]:
    async with httpx.AsyncClient(timeout=0.5) as http:
        dy = DouyinClient(http, api_base=douyin.base_url, app_key=douyin.app_key, app_secret=douyin.app_secret,
                          shop_id=douyin.shop_id, token_cache=MemoryTokenCache())
        wx = WeChatShippingClient(http, api_base=wechat.base_url, app_id=wechat.app_id, secret=wechat.secret,
                                  token_cache=MemoryTokenCache())
        yield ChannelShipSender({"douyin": DouyinShipConfirm(dy),
                                 "miniprogram": MiniprogramShippingUpload(wx, mch_id=MCH, clock=clock)})


def dispatcher(db: Database, sender: ChannelShipSender, clock: Clock) -> OutboxDispatcher:
    return OutboxDispatcher(db, {"channel_ship": sender}, clock=clock, base_backoff_s=1, max_backoff_s=1,
                            retry_window_s=3600, on_dead=ShipmentDeadRows(db, clock=clock))


async def ship(bus: MessageBus, channel: str, external_id: str, waybill: str = "SF1234567890",
               keys: CustomerKeys = NO_KEYS) -> str:
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(c.CreateOrder(
        channel=channel, external_id=external_id, customer_id="", customer_name="浦东4S店",
        customer_phone="13800000000", address="上海市浦东新区张杨路500号", store="SH01", paid=True,
        customer=keys, lines=(c.LineInput("BP-001", 2, 19_900, "刹车片"),), by="api", via="api"))
    await drive(bus, order.order_no, "pick", "check", "pack")
    await drive(bus, order.order_no, "ship", waybill=waybill)
    return str(order.order_no)


async def ship_rows(db: Database) -> list[dict[str, Any]]:
    return await rows(db, t.outbox, t.outbox.c.channel == "channel_ship")


async def test_a_shipped_douyin_order_is_confirmed_at_douyin(
    bus: MessageBus, db: Database, douyin: FakeDouyin, sender: ChannelShipSender, clock: Clock
) -> None:
    await ship(bus, "douyin", DY_ORDER)
    assert await dispatcher(db, sender, clock).run_once() == 1

    assert douyin.shipments == [{"order_id": DY_ORDER, "company_code": "shunfeng", "logistics_code": "SF1234567890"}]
    assert douyin.refused == []  # app key, sign and token all accepted
    assert douyin.orders[DY_ORDER]["order_status"] == 3
    [row] = await ship_rows(db)
    assert (row["kind"], row["status"], row["attempts"]) == ("douyin", "delivered", 0)


async def test_a_shipped_miniprogram_order_uploads_its_shipping_info(
    bus: MessageBus, db: Database, wechat: FakeWeChatMini, sender: ChannelShipSender, clock: Clock
) -> None:
    await ship(bus, "miniprogram", MINI_ORDER, waybill="YT7407032196699", keys=CustomerKeys(openid=OPENID))
    await dispatcher(db, sender, clock).run_once()

    [upload] = wechat.uploads
    assert upload["order_key"] == {"order_number_type": 1, "mchid": MCH, "out_trade_no": MINI_ORDER}
    assert (upload["logistics_type"], upload["delivery_mode"], upload["payer"]) == (1, 1, {"openid": OPENID})
    assert upload["shipping_list"] == [{"tracking_no": "YT7407032196699", "express_company": "YTO",
                                        "item_desc": "刹车片×2", "contact": {"receiver_contact": "138****0000"}}]
    assert upload["upload_time"].endswith("+08:00")
    assert wechat.payments[MCH, MINI_ORDER]["order_state"] == 2
    assert [r["status"] for r in await ship_rows(db)] == ["delivered"]


async def test_rest_and_k3_orders_tell_no_channel(
    bus: MessageBus, db: Database, douyin: FakeDouyin, wechat: FakeWeChatMini, sender: ChannelShipSender, clock: Clock
) -> None:
    await ship(bus, "rest", "R-1")
    await ship(bus, "k3", "XSDD000123")
    assert await ship_rows(db) == []
    assert await dispatcher(db, sender, clock).run_once() == 0
    assert douyin.shipments == [] and wechat.uploads == []


async def test_douyin_trouble_is_retried_until_confirmed_once(
    bus: MessageBus, db: Database, douyin: FakeDouyin, sender: ChannelShipSender, clock: Clock
) -> None:
    await ship(bus, "douyin", DY_ORDER)
    douyin.fail_next(code=20000, path=SHIP_PATH)
    douyin.fail_next(status=503, path=SHIP_PATH)
    d = dispatcher(db, sender, clock)
    for _ in range(3):
        await d.run_once()
        clock.advance(2)

    [row] = await ship_rows(db)
    assert (row["status"], row["attempts"]) == ("delivered", 2)
    assert len(douyin.shipments) == 1


async def test_already_shipped_at_the_platform_is_success(
    bus: MessageBus, db: Database, douyin: FakeDouyin, wechat: FakeWeChatMini, sender: ChannelShipSender,
    clock: Clock
) -> None:
    """A re-send after a time-out whose first try went through: Douyin answers 60110, WeChat 10060003."""
    douyin.orders[DY_ORDER]["order_status"] = 3
    payment = wechat.payments[MCH, MINI_ORDER]
    payment.update(order_state=2, reshipped=True)
    await ship(bus, "douyin", DY_ORDER)
    await ship(bus, "miniprogram", MINI_ORDER, keys=CustomerKeys(openid=OPENID))
    d = dispatcher(db, sender, clock)
    while await d.run_once():
        pass

    assert [r["status"] for r in await ship_rows(db)] == ["delivered", "delivered"]
    assert douyin.shipments == [] and wechat.uploads == []
    assert await rows(db, t.exceptions) == []


async def test_a_wechat_retry_asks_first_and_keeps_the_one_reship(
    bus: MessageBus, db: Database, wechat: FakeWeChatMini, sender: ChannelShipSender, clock: Clock
) -> None:
    await ship(bus, "miniprogram", MINI_ORDER, keys=CustomerKeys(openid=OPENID))
    wechat.fail_next(errcode=-1, path=UPLOAD_PATH)
    d = dispatcher(db, sender, clock)
    await d.run_once()
    wechat.payments[MCH, MINI_ORDER]["order_state"] = 2  # entered meanwhile (or our first try's answer was lost)
    clock.advance(2)
    await d.run_once()

    [row] = await ship_rows(db)
    assert (row["status"], row["attempts"]) == ("delivered", 1)
    assert wechat.uploads == [] and wechat.payments[MCH, MINI_ORDER]["reshipped"] is False


async def test_a_final_refusal_becomes_customer_services_task_with_the_platforms_words(
    bus: MessageBus, db: Database, douyin: FakeDouyin, sender: ChannelShipSender, clock: Clock
) -> None:
    async with UnitOfWork(db) as uow:
        await uow.users.upsert(User("cs1", "刘洋", frozenset({"service"})), clock())
        await uow.commit()
    douyin.orders[DY_ORDER]["order_status"] = 4  # cancelled at Douyin meanwhile
    no = await ship(bus, "douyin", DY_ORDER)
    dead = ShipmentDeadRows(db, clock=clock)
    await dispatcher(db, sender, clock).run_once()

    [row] = await ship_rows(db)
    assert (row["status"], row["attempts"]) == ("dead", 1)
    [task] = await rows(db, t.exceptions)
    assert (task["kind"], task["order_no"]) == ("channel_ship_failed", no)
    assert "订单已取消，禁止发货。" in task["message"] and "SF1234567890" in task["message"]
    [push] = await rows(db, t.outbox, t.outbox.c.channel == "chat")
    assert push["recipient"] == "cs1" and push["payload"]["text"] == task["message"]
    assert await dead.report() == 0  # told once


async def test_unknown_courier_and_unknown_payment_reach_service_not_silence(
    bus: MessageBus, db: Database, douyin: FakeDouyin, wechat: FakeWeChatMini, sender: ChannelShipSender,
    clock: Clock
) -> None:
    async with UnitOfWork(db) as uow:
        await uow.users.upsert(User("cs1", "刘洋", frozenset({"service"})), clock())
        await uow.commit()
    await ship(bus, "douyin", DY_ORDER, waybill="QX000123")
    await ship(bus, "miniprogram", "MP-NOT-PAID", keys=CustomerKeys(openid=OPENID))
    d = dispatcher(db, sender, clock)
    while await d.run_once():
        pass

    assert [r["status"] for r in await ship_rows(db)] == ["dead", "dead"]
    messages = sorted(task["message"] for task in await rows(db, t.exceptions))
    assert "没有对应的抖店物流公司编码" in messages[1] and "QX000123" in messages[1]
    assert "微信拒绝发货信息录入：10060001 支付单不存在" in messages[0]
    assert douyin.shipments == [] and wechat.uploads == []


async def test_rows_of_an_unconfigured_platform_are_set_aside(
    bus: MessageBus, db: Database, clock: Clock
) -> None:
    await ship(bus, "douyin", DY_ORDER)
    await dispatcher(db, ChannelShipSender({}), clock).run_once()
    [row] = await ship_rows(db)
    assert (row["status"], row["attempts"]) == ("unconfigured", 0)
    assert row["last_error"].startswith("not configured")


async def test_rows_set_aside_go_out_once_their_platform_is_configured(
    bus: MessageBus, db: Database, douyin: FakeDouyin, sender: ChannelShipSender, clock: Clock
) -> None:
    await ship(bus, "douyin", DY_ORDER)
    await ship(bus, "miniprogram", MINI_ORDER, keys=CustomerKeys(openid=OPENID))
    await dispatcher(db, ChannelShipSender({}), clock).run_once()

    assert await revive_unconfigured(db, ["douyin"], clock()) == 1
    assert await revive_unconfigured(db, ["miniprogram"], clock() + timedelta(days=8)) == 0  # too old by then
    await dispatcher(db, sender, clock).run_once()
    assert [(r["kind"], r["status"]) for r in await ship_rows(db)] == [
        ("douyin", "delivered"), ("miniprogram", "unconfigured")]
    assert len(douyin.shipments) == 1
