"""The books in K3 Cloud through the whole app, on SQLite and PostgreSQL: 发货 in chat → an audited receivable at the
fake K3, its number in 查询 and GET /api/v1/orders/{no}; K3's refusal → finance's card with K3's words; without
K3 book settings the rows are set aside as unconfigured, counted on /metrics, and booked at the next start with
settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from bot.app import create_app
from bot.books import K3_DEAD
from config.settings import K3Settings, Settings
from integrations.fakes.k3 import FakeK3
from integrations.fakes.wecom import FakeWeCom
from tests.e2e.conftest import API_TOKEN, Chat

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
async def k3() -> AsyncIterator[FakeK3]:
    async with FakeK3() as fake:
        yield fake


def with_k3(settings: Settings, fake: FakeK3) -> Settings:
    k3 = K3Settings(server_url=fake.server_url, acct_id=fake.acct_id, username=fake.username, app_id=fake.app_id,
                    app_secret=SecretStr(fake.app_secret), org_number="101", default_customer="CUST-RETAIL")
    return settings.model_copy(update={"k3": k3})


async def staffed(chat: Chat) -> Chat:
    await chat.add_user("wh1", "王强", "warehouse", store="SH01")
    await chat.add_user("fin1", "周敏", "finance")
    return chat


async def ship(chat: Chat, external_id: str = "DY1001") -> str:
    no = await chat.order(external_id)
    for text in (f"拣货 {no}", f"质检 {no}", f"打包 {no}", f"发货 {no} SF1234567890"):
        await chat.say("wh1", text)
        await chat.settle()
    return no


@pytest.fixture
async def k3_chat(aiohttp_client: Any, e2e_settings: Settings, fake_wecom: FakeWeCom, k3: FakeK3) -> Chat:
    settings = with_k3(e2e_settings, k3)
    return await staffed(Chat(await aiohttp_client(create_app(settings, deliver=False)), fake_wecom, settings))


async def test_shipping_in_chat_books_the_receivable_and_the_order_shows_its_number(k3_chat: Chat, k3: FakeK3) -> None:
    no = await ship(k3_chat)
    [bill] = k3.books.receivables.values()
    assert (bill.number, bill.status, bill.header["FAR_Remark"]) == ("AR00000001", "C", f"orderbot 发货 {no}")
    assert bill.header["FCUSTOMERID.FNumber"] == "CUST-RETAIL"

    await k3_chat.say("wh1", f"查询 {no}")
    await k3_chat.settle()
    assert "金蝶K3：应收单 AR00000001（已审核）" in k3_chat.last("wh1")
    body = await (await k3_chat.client.get(f"/api/v1/orders/{no}", headers=AUTH)).json()
    assert body["k3_bills"] == [{"kind": "receivable", "ref": no, "bill_no": "AR00000001", "status": "C"}]


async def test_k3_refusing_reaches_finance_with_k3s_message(k3_chat: Chat, k3: FakeK3) -> None:
    k3.books.known_materials = {"XX-000"}
    no = await ship(k3_chat)
    assert await k3_chat.app[K3_DEAD].report() == 0  # told by the dispatcher's on_dead already: a start tells no one twice
    await k3_chat.settle()
    card = k3_chat.last("fin1")
    assert "金蝶记账失败" in card and f"订单 {no} 的应收单未记入 K3" in card
    assert "第1行“物料编码”字段的值“BP-001”在系统中不存在或未审核" in card
    metrics = await (await k3_chat.client.get("/metrics")).text()
    assert 'orderbot_outbox_rows{channel="k3",status="dead"} 1.0' in metrics


async def test_without_settings_bookings_are_counted_on_metrics_and_booked_once_configured(
    aiohttp_client: Any, chat: Chat, e2e_settings: Settings, fake_wecom: FakeWeCom, k3: FakeK3
) -> None:
    await staffed(chat)
    no = await ship(chat)
    metrics = await (await chat.client.get("/metrics")).text()
    assert 'orderbot_outbox_rows{channel="k3",status="unconfigured"} 1.0' in metrics
    assert k3.books.saves == []

    settings = with_k3(e2e_settings, k3)  # the same database, now with K3 settings: a restart
    later = Chat(await aiohttp_client(create_app(settings, deliver=False)), fake_wecom, settings)
    await later.settle()
    assert [b.header["FAR_Remark"] for b in k3.books.receivables.values()] == [f"orderbot 发货 {no}"]
    metrics = await (await later.client.get("/metrics")).text()
    assert 'orderbot_outbox_rows{channel="k3",status="unconfigured"} 0.0' in metrics


def test_check_names_what_the_k3_books_lack_without_refusing_to_serve(e2e_settings: Settings) -> None:
    from bot.startup_checks import settings_problems

    pull_only = e2e_settings.model_copy(update={"k3": K3Settings(server_url="https://erp/k3cloud/", acct_id="1",
                                                                 app_id="a_b", app_secret=SecretStr("s"))})
    [problem] = [p for p in settings_problems(pull_only, {}) if "K3" in p.text]
    assert not problem.fatal and "ORDERBOT_K3__ORG_NUMBER" in problem.text
    booked = pull_only.model_copy(update={"k3": pull_only.k3.model_copy(update={"org_number": "101"})})
    assert [p for p in settings_problems(booked, {}) if "K3" in p.text] == []
