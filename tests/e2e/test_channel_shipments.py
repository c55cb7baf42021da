"""Channels told back through the whole app, on SQLite and PostgreSQL: 发货 in chat for a Douyin order → the ship-confirm
at the fake Douyin gateway; an order placed in the mini-program and shipped in chat → upload_shipping_info at the fake
WeChat; a refusal → customer service's task in chat."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from bot.app import create_app
from config.settings import DouyinSettings, MiniprogramSettings, Settings
from integrations.fakes.douyin import FakeDouyin
from integrations.fakes.wechat_mini import FakeWeChatMini
from integrations.fakes.wecom import FakeWeCom
from tests.e2e.conftest import Chat

MCH = "1900000109"


@pytest.fixture
async def douyin() -> AsyncIterator[FakeDouyin]:
    async with FakeDouyin() as fake:
        yield fake


@pytest.fixture
async def wechat() -> AsyncIterator[FakeWeChatMini]:
    async with FakeWeChatMini() as fake:
        yield fake


@pytest.fixture
async def shop(aiohttp_client: Any, e2e_settings: Settings, fake_wecom: FakeWeCom, douyin: FakeDouyin,
               wechat: FakeWeChatMini) -> Chat:
    settings = e2e_settings.model_copy(update={
        "douyin": DouyinSettings(app_key=douyin.app_key, app_secret=SecretStr(douyin.app_secret),
                                 shop_id=douyin.shop_id, api_base=douyin.base_url, timeout_s=1.0),
        "miniprogram": MiniprogramSettings(app_id=wechat.app_id, secret=SecretStr(wechat.secret),
                                           session_secret=SecretStr("mini-session-e2e"), api_base=wechat.base_url,
                                           timeout_s=1.0, mch_id=MCH),
    })
    chat = Chat(await aiohttp_client(create_app(settings, deliver=False)), fake_wecom, settings)
    await chat.add_user("wh1", "王强", "warehouse", store="SH01")
    await chat.add_user("cs1", "刘洋", "service")
    return chat


async def ship_in_chat(chat: Chat, no: str, waybill: str = "SF1234567890") -> None:
    for text in (f"拣货 {no}", f"质检 {no}", f"打包 {no}", f"发货 {no} {waybill}"):
        await chat.say("wh1", text)
        await chat.settle()


async def test_shipping_a_douyin_order_in_chat_confirms_it_at_douyin(shop: Chat, douyin: FakeDouyin) -> None:
    douyin.add_order("6920000000000000001")
    no = await shop.order("6920000000000000001")
    await ship_in_chat(shop, no)

    assert douyin.shipments == [{"order_id": "6920000000000000001", "company_code": "shunfeng",
                                 "logistics_code": "SF1234567890"}]
    assert douyin.refused == []


async def test_a_miniprogram_order_shipped_in_chat_reaches_wechat(shop: Chat, wechat: FakeWeChatMini) -> None:
    await shop.order("DY-stock")  # puts stock at SH01
    response = await shop.client.post("/channels/miniprogram/login", json={"js_code": wechat.issue_code("o-alice")})
    token = (await response.json())["token"]
    response = await shop.client.post("/channels/miniprogram/orders", headers={"Authorization": f"Bearer {token}"},
                                      json={"external_id": "MP20261130001", "address": "上海市浦东新区张杨路500号",
                                            "paid": True, "phone": "13900001111",
                                            "lines": [{"sku": "BP-001", "qty": 1, "unit_price": "199.00",
                                                       "name": "刹车片"}]})
    assert response.status == 201, await response.text()
    wechat.add_payment(MCH, "MP20261130001", "o-alice")
    await ship_in_chat(shop, (await response.json())["order_no"], "ZTO75611788998298")

    [upload] = wechat.uploads
    assert upload["order_key"]["out_trade_no"] == "MP20261130001" and upload["payer"] == {"openid": "o-alice"}
    assert upload["shipping_list"] == [{"tracking_no": "ZTO75611788998298", "express_company": "ZTO",
                                        "item_desc": "刹车片×1", "contact": {"receiver_contact": "139****1111"}}]


async def test_a_refused_confirmation_reaches_customer_service_in_chat(shop: Chat, douyin: FakeDouyin) -> None:
    douyin.add_order("6920000000000000002", status=4)  # cancelled at Douyin
    no = await shop.order("6920000000000000002")
    await ship_in_chat(shop, no)

    [task] = [m for m in shop.received("cs1") if "发货回传失败" in m]
    assert no in task and "订单已取消，禁止发货。" in task and "抖店后台" in task
    assert douyin.shipments == []
