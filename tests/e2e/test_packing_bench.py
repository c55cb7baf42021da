"""The packing bench in chat through the whole app, on SQLite and PostgreSQL, with the fake Cainiao LINK: 打包 says
the e-waybill is being fetched, the packer then hears what was printed where, 重打 prints another copy, and 发货
needs no typed waybill; a store whose provider refuses gets a task card instead of silence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.app import create_app
from bot.keys import DB
from config.settings import CainiaoSettings, PrintingSettings, Settings, WaybillSettings
from integrations.db import tables as t
from integrations.fakes.cainiao import FakeCainiao
from integrations.fakes.print_component import FakePrintComponent
from integrations.fakes.wecom import FakeWeCom
from tests.e2e.conftest import API_TOKEN, Chat

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
STORE = {"name": "浦东店", "address": "上海市浦东新区川沙路100号", "phone": "021-50001234"}


@pytest.fixture
async def cainiao() -> AsyncIterator[FakeCainiao]:
    async with FakeCainiao(provider_id="ob-link", secret="e2e-link-secret") as fake:
        yield fake


@pytest.fixture
async def component() -> AsyncIterator[FakePrintComponent]:
    async with FakePrintComponent() as fake:
        yield fake


@pytest.fixture
async def bench(aiohttp_client: Any, e2e_settings: Settings, fake_wecom: FakeWeCom, cainiao: FakeCainiao,
                component: FakePrintComponent) -> Chat:
    settings = e2e_settings.model_copy(update={
        "printing": PrintingSettings(printers={"SH01": component.url}),  # Cainiao's print component at the bench
        "waybill": WaybillSettings(default="cainiao"),
        "cainiao": CainiaoSettings(api_base=cainiao.api_base, provider_id="ob-link",
                                   secret=SecretStr("e2e-link-secret"), cp_code="ZTO"),
    })
    chat = Chat(await aiohttp_client(create_app(settings, deliver=False)), fake_wecom, settings)
    await chat.add_user("wh1", "王强", "warehouse", store="SH01")
    await chat.add_user("sup1", "李敏", "supervisor")
    resp = await chat.client.put("/api/v1/stores/SH01", json=STORE, headers=AUTH)
    assert resp.status == 200
    return chat


async def print_rows(chat: Chat) -> list[Any]:
    async with chat.app[DB].engine.connect() as conn:
        stmt = select(t.outbox).where(t.outbox.c.channel == "print").order_by(t.outbox.c.id)
        return [r._mapping for r in await conn.execute(stmt)]


async def to_packed(chat: Chat) -> str:
    no = await chat.order("DY1001")
    for text in (f"拣货 {no}", f"质检 {no}"):
        await chat.say("wh1", text)
        await chat.settle()
    return no


async def test_pack_fetches_the_waybill_reprint_prints_again_and_ship_needs_no_number(
    bench: Chat, cainiao: FakeCainiao, component: FakePrintComponent
) -> None:
    no = await to_packed(bench)
    await bench.say("wh1", f"打包 {no}")
    await bench.settle()

    said = bench.received("wh1")
    [waybill] = cainiao.waybills()
    assert any(m.startswith(f"已打包 {no}，正在向菜鸟取电子面单") for m in said)
    assert said[-1].startswith(f"订单 {no} 电子面单已取到：中通快递 {waybill}（菜鸟），面单已发往门店 SH01 的面单打印机。")
    assert [r["dedup_key"] for r in await print_rows(bench)] == [f"print:{no}:{waybill}:0"]
    [task] = component.tasks  # the label reached the bench's print component with Cainiao's print data
    assert task["task"]["documents"][0]["documentID"] == waybill

    await bench.say("wh1", f"重打 {no}")
    await bench.settle()
    assert bench.last("wh1") == f"已重打订单 {no} 的面单（运单 {waybill}，第 2 张），已发往门店 SH01 的面单打印机。"
    copies = await print_rows(bench)
    assert [r["payload"]["copy"] for r in copies] == [0, 1]
    assert copies[1]["payload"]["label"] == copies[0]["payload"]["label"]
    assert [task["task"]["documents"][0]["documentID"] for task in component.tasks] == [waybill, waybill]

    await bench.say("wh1", f"发货 {no}")
    await bench.settle()
    assert bench.last("wh1").startswith(f"已发货 {no}，运单 {waybill}")


async def test_a_refused_waybill_is_a_task_card_and_reprint_asks_again(bench: Chat, cainiao: FakeCainiao) -> None:
    no = await to_packed(bench)
    cainiao.fail_next("NO_BALANCE")
    await bench.say("wh1", f"打包 {no}")
    await bench.settle()
    cards = [m for m in bench.fake.messages if m.get("msgtype") == "template_card" and m.get("touser") == "wh1"]
    assert any("电子面单余额不足" in str(card) for card in cards)

    await bench.say("wh1", f"重打 {no}")
    await bench.settle()
    [waybill] = cainiao.waybills()
    assert f"电子面单已取到：中通快递 {waybill}" in bench.last("wh1")
