"""A customer's address change checked on the (fake) Amap map first, through the REST API and the 改地址 chat verb,
on SQLite and PostgreSQL: a good address reaches the warehouse and finance; "浦东某小区" goes red to customer
service, the order is left alone, and the caller hears why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import create_app
from bot.keys import DB
from config.settings import GeoSettings, Settings
from domain import commands as c
from domain.order import Order
from integrations.db import tables as t
from integrations.db.uow import UnitOfWork
from integrations.fakes.geo import DEFAULT_KEY, FakeAmap
from integrations.fakes.wecom import FakeWeCom
from tests.e2e.conftest import API_TOKEN, Chat

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
OLD_ADDRESS = "上海市浦东新区张杨路500号"
GOOD = "上海市闵行区七莘路100号"
VAGUE = "浦东某小区"


@pytest.fixture
async def amap() -> AsyncIterator[FakeAmap]:
    async with FakeAmap() as fake:
        yield fake


@pytest.fixture
async def geo_chat(aiohttp_client: Any, e2e_settings: Settings, fake_wecom: FakeWeCom, amap: FakeAmap) -> Chat:
    geo = GeoSettings(api_base=amap.base_url, key=DEFAULT_KEY, timeout_s=0.5)
    settings = e2e_settings.model_copy(update={"geo": geo})
    chat = Chat(await aiohttp_client(create_app(settings, deliver=False)), fake_wecom, settings)
    await chat.add_user("wh1", "王强", "warehouse", store="SH01")
    await chat.add_user("wh2", "赵磊", "warehouse", store="BJ01")
    await chat.add_user("fin1", "钱会计", "finance")
    await chat.add_user("cs1", "刘洋", "service")
    return chat


async def picking(chat: Chat, external_id: str = "DY1001") -> str:
    no = await chat.order(external_id)
    await chat.handle(c.FireOrderTrigger(no, "pick", by="wh1", via="wecom"))
    await chat.settle()
    chat.fake.messages.clear()  # the pick task and its reply: not what these tests are about
    return no


async def load(chat: Chat, order_no: str) -> Order:
    async with UnitOfWork(chat.app[DB]) as uow:
        found = await uow.orders.get(order_no)
    assert found is not None
    return found


async def rows(chat: Chat, table: Any, *where: Any) -> list[Any]:
    async with chat.app[DB].engine.connect() as conn:
        return [r._mapping for r in (await conn.execute(select(table).where(*where))).all()]


def cards(chat: Chat, user: str) -> list[dict[str, Any]]:
    return [m["template_card"] for m in chat.fake.messages
            if m.get("touser") == user and m["msgtype"] == "template_card"]


async def post_address(chat: Chat, order_no: str, address: str) -> tuple[int, dict[str, Any]]:
    resp = await chat.client.post(f"/api/v1/orders/{order_no}/address", json={"address": address}, headers=AUTH)
    return resp.status, await resp.json()


def assert_warehouse_and_finance_told(chat: Chat, order_no: str, address: str) -> None:
    relabel = [card for card in cards(chat, "wh1") if card["task_id"].startswith(f"relabel-{order_no}")]
    assert len(relabel) == 1 and address in relabel[0]["sub_title_text"]
    assert relabel[0]["source"]["desc_color"] == 2  # highlighted
    assert "账期重算" in chat.last("fin1") and address in chat.last("fin1")
    assert chat.received("wh2") == []  # another store's warehouse is not bothered


async def assert_left_alone(chat: Chat, order_no: str) -> None:
    order = await load(chat, order_no)
    assert (order.address, order.address_change_pending, order.state) == (OLD_ADDRESS, False, "picking")
    assert chat.received("wh1") == [] and chat.received("fin1") == []


def red_card_to_service(chat: Chat, order_no: str) -> dict[str, Any]:
    got = cards(chat, "cs1")
    assert len(got) == 1, chat.fake.messages
    card = got[0]
    assert card["main_title"]["title"] == f"地址不详 · 未改址 {order_no}"
    assert card["source"]["desc_color"] == 2
    assert "只能定位到区县（上海市浦东新区）" in card["sub_title_text"]
    return card


# ---- the REST API

async def test_api_a_good_address_reaches_the_warehouse_and_finance(geo_chat: Chat, amap: FakeAmap) -> None:
    no = await picking(geo_chat)
    status, body = await post_address(geo_chat, no, GOOD)
    assert (status, body["address"]) == (200, GOOD)
    await geo_chat.settle()
    assert_warehouse_and_finance_told(geo_chat, no, GOOD)
    assert geo_chat.received("cs1") == []
    assert amap.queries == [GOOD]


async def test_api_a_vague_address_goes_red_to_service_and_is_422(geo_chat: Chat) -> None:
    no = await picking(geo_chat)
    status, body = await post_address(geo_chat, no, VAGUE)
    assert status == 422
    assert (body["error"], body["level"], body["formatted"]) == ("address_unresolved", "区县", "上海市浦东新区")
    assert body["message"].startswith("地址「浦东某小区」只能定位到区县（上海市浦东新区），缺少街道和门牌号")
    await geo_chat.settle()
    await assert_left_alone(geo_chat, no)
    red_card_to_service(geo_chat, no)
    (row,) = await rows(geo_chat, t.exceptions, t.exceptions.c.order_no == no)
    assert (row["kind"], row["store"], row["resolved_at"]) == ("address_unresolved", "SH01", None)
    (audit,) = await rows(geo_chat, t.audit_log, t.audit_log.c.action == "change_address")
    assert (audit["outcome"], audit["detail"]["new_address"]) == ("refused", VAGUE)


async def test_api_the_same_vague_address_again_is_refused_without_a_second_alarm(geo_chat: Chat) -> None:
    no = await picking(geo_chat)
    assert (await post_address(geo_chat, no, VAGUE))[0] == 422
    assert (await post_address(geo_chat, no, VAGUE))[0] == 422
    await geo_chat.settle()
    red_card_to_service(geo_chat, no)
    assert len(await rows(geo_chat, t.exceptions, t.exceptions.c.order_no == no)) == 1


async def test_api_a_corrected_address_goes_through_and_closes_the_exception(geo_chat: Chat) -> None:
    no = await picking(geo_chat)
    assert (await post_address(geo_chat, no, VAGUE))[0] == 422
    assert (await post_address(geo_chat, no, GOOD))[0] == 200
    await geo_chat.settle()
    assert_warehouse_and_finance_told(geo_chat, no, GOOD)
    (row,) = await rows(geo_chat, t.exceptions, t.exceptions.c.order_no == no)
    assert row["resolved_at"] is not None and GOOD in row["resolution"]


async def test_api_amap_timing_out_does_not_block_the_change_but_service_confirms(
    geo_chat: Chat, amap: FakeAmap
) -> None:
    no = await picking(geo_chat)
    amap.stall_next(2.0)
    status, body = await post_address(geo_chat, no, VAGUE)
    assert (status, body["address"]) == (200, VAGUE)
    await geo_chat.settle()
    assert_warehouse_and_finance_told(geo_chat, no, VAGUE)
    (card,) = cards(geo_chat, "cs1")
    assert card["main_title"]["title"] == f"地址未核验 · 已改址 {no}" and "超时" in card["sub_title_text"]
    (row,) = await rows(geo_chat, t.exceptions, t.exceptions.c.order_no == no)
    assert row["kind"] == "address_unverified"


async def test_api_a_shipped_order_is_refused_for_being_shipped_not_for_the_address(geo_chat: Chat) -> None:
    no = await geo_chat.order()
    for trigger in ("pick", "check", "pack", "ship"):
        await geo_chat.handle(c.FireOrderTrigger(no, trigger, by="wh1", via="wecom", waybill="SF1"))
    status, body = await post_address(geo_chat, no, VAGUE)
    assert status == 409 and "已发货" in body["message"]
    assert await rows(geo_chat, t.exceptions, t.exceptions.c.order_no == no) == []


async def test_without_a_geo_key_addresses_are_not_checked(chat: Chat, amap: FakeAmap) -> None:
    await chat.add_user("wh1", "王强", "warehouse", store="SH01")
    no = await picking(chat)
    status, body = await post_address(chat, no, VAGUE)
    assert (status, body["address"]) == (200, VAGUE)
    assert amap.queries == []


# ---- the 改地址 chat verb

async def test_chat_a_good_address_reaches_the_warehouse_and_finance(geo_chat: Chat) -> None:
    no = await picking(geo_chat)
    await geo_chat.say("cs1", f"改地址 {no} {GOOD}")
    await geo_chat.settle()
    assert geo_chat.last("cs1").startswith(f"已改地址 {no}：{GOOD}。包裹已在门店 SH01 仓库")
    assert_warehouse_and_finance_told(geo_chat, no, GOOD)


async def test_chat_a_vague_address_is_answered_with_the_reason_and_goes_red_to_service(geo_chat: Chat) -> None:
    await geo_chat.add_user("cs2", "孙丽", "service")
    no = await picking(geo_chat)
    await geo_chat.say("cs2", f"改地址 {no} {VAGUE}")
    await geo_chat.settle()
    answer = geo_chat.last("cs2")
    assert answer.startswith("地址「浦东某小区」只能定位到区县（上海市浦东新区）")
    assert answer.endswith(f"订单 {no} 地址未改，已记为地址不详并通知客服跟进。")
    await assert_left_alone(geo_chat, no)
    red_card_to_service(geo_chat, no)
    (row,) = await rows(geo_chat, t.exceptions, t.exceptions.c.order_no == no)
    assert row["kind"] == "address_unresolved"
