"""Customer texts through the whole app, on SQLite and PostgreSQL: 发货 in chat → the text at the fake Aliyun SMS;
短信 <客户> 停发|恢复 and PUT /api/v1/customers/{id}/sms; without SMS settings the rows are set aside as unconfigured
and /metrics counts them; configured later, they are sent at start-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.app import create_app
from bot.keys import DB
from config.settings import Settings, SmsSettings
from integrations.db import tables as t
from integrations.fakes.aliyun_sms import FakeAliyunSms
from integrations.fakes.wecom import FakeWeCom
from tests.e2e.conftest import API_TOKEN, Chat

KEY_ID, SECRET, SIGN, SHIP = "LTAI-e2e", "e2e-aliyun-secret", "汽配测试", "SMS_200001"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
async def aliyun() -> AsyncIterator[FakeAliyunSms]:
    async with FakeAliyunSms(access_key_id=KEY_ID, access_key_secret=SECRET, sign_name=SIGN) as fake:
        fake.register(SHIP, "您的订单${order_no}已由${courier}发出，运单号${waybill}。")
        yield fake


def with_sms(settings: Settings, fake: FakeAliyunSms) -> Settings:
    sms = SmsSettings(access_key_id=KEY_ID, access_key_secret=SecretStr(SECRET), sign_name=SIGN,
                      api_base=fake.base_url, shipped_template=SHIP,
                      quiet_start="00:00", quiet_end="00:00")  # equal: no quiet hours (the test runs at any hour)
    return settings.model_copy(update={"sms": sms})


async def staffed(chat: Chat) -> Chat:
    await chat.add_user("wh1", "王强", "warehouse", store="SH01")
    await chat.add_user("cs1", "刘洋", "service")
    return chat


async def ship(chat: Chat, external_id: str = "DY1001") -> str:
    no = await chat.order(external_id)
    for text in (f"拣货 {no}", f"质检 {no}", f"打包 {no}", f"发货 {no} SF1234567890"):
        await chat.say("wh1", text)
        await chat.settle()
    return no


async def sms_rows(chat: Chat) -> list[Any]:
    async with chat.app[DB].engine.connect() as conn:
        return [r._mapping for r in await conn.execute(select(t.outbox).where(t.outbox.c.channel == "sms"))]


@pytest.fixture
async def sms_chat(aiohttp_client: Any, e2e_settings: Settings, fake_wecom: FakeWeCom,
                   aliyun: FakeAliyunSms) -> Chat:
    settings = with_sms(e2e_settings, aliyun)
    return await staffed(Chat(await aiohttp_client(create_app(settings, deliver=False)), fake_wecom, settings))


async def test_shipping_in_chat_texts_the_customer(sms_chat: Chat, aliyun: FakeAliyunSms) -> None:
    no = await ship(sms_chat)
    assert [(s.phone, s.template_code, s.params) for s in aliyun.sent] == [
        ("13800000000", SHIP, {"order_no": no, "waybill": "SF1234567890", "courier": "顺丰速运"})]
    assert aliyun.refusals == []


async def test_customer_service_stops_and_resumes_a_customers_texts_in_chat(
    sms_chat: Chat, aliyun: FakeAliyunSms
) -> None:
    await sms_chat.order("DY0")  # the customer is known from an earlier order
    await sms_chat.say("cs1", "短信 c-4s-01 停发")
    await sms_chat.settle()
    assert sms_chat.last("cs1").startswith("已停发客户 浦东4S店（C-4S-01）")
    await ship(sms_chat)
    assert aliyun.sent == [] and [r["status"] for r in await sms_rows(sms_chat)] == ["skipped"]

    await sms_chat.say("cs1", "短信 C-4S-01 恢复")
    await sms_chat.settle()
    assert sms_chat.last("cs1").startswith("已恢复客户 浦东4S店（C-4S-01）")
    await sms_chat.say("wh1", "短信 C-4S-01 停发")
    await sms_chat.settle()
    assert sms_chat.last("wh1") == "“短信”只有运营经理、客服、主管可以使用，您的角色是仓管。"


async def test_the_api_sets_a_customers_opt_out(sms_chat: Chat) -> None:
    await sms_chat.order()
    client = sms_chat.client
    resp = await client.put("/api/v1/customers/C-4S-01/sms", json={"opt_out": True}, headers=AUTH)
    assert (resp.status, await resp.json()) == (200, {"customer_id": "C-4S-01", "sms_opt_out": True})
    assert (await client.put("/api/v1/customers/NOBODY/sms", json={"opt_out": True}, headers=AUTH)).status == 404
    assert (await client.put("/api/v1/customers/C-4S-01/sms", json={"opt_out": "maybe"}, headers=AUTH)).status == 400
    assert (await client.put("/api/v1/customers/C-4S-01/sms", json={"opt_out": False})).status == 401


async def test_without_settings_texts_are_set_aside_counted_on_metrics_and_sent_once_configured(
    aiohttp_client: Any, chat: Chat, e2e_settings: Settings, fake_wecom: FakeWeCom, aliyun: FakeAliyunSms
) -> None:
    await staffed(chat)
    no = await ship(chat)
    [row] = await sms_rows(chat)
    assert (row["status"], row["last_error"].startswith("not configured")) == ("unconfigured", True)
    metrics = await (await chat.client.get("/metrics")).text()
    assert 'orderbot_outbox_rows{channel="sms",status="unconfigured"} 1.0' in metrics
    assert 'orderbot_outbox_rows{channel="sms",status="pending"} 0.0' in metrics

    settings = with_sms(e2e_settings, aliyun)  # the same database, now with SMS settings: a restart
    later = Chat(await aiohttp_client(create_app(settings, deliver=False)), fake_wecom, settings)
    await later.settle()
    assert [s.params["order_no"] for s in aliyun.sent] == [no]
    metrics = await (await later.client.get("/metrics")).text()
    assert 'orderbot_outbox_rows{channel="sms",status="unconfigured"} 0.0' in metrics


def test_check_names_what_sms_lacks_without_refusing_to_serve(e2e_settings: Settings) -> None:
    from bot.startup_checks import settings_problems

    partial = e2e_settings.model_copy(update={"sms": SmsSettings(access_key_id=KEY_ID)})
    [problem] = [p for p in settings_problems(partial, {}) if "短信" in p.text]
    assert not problem.fatal and "ORDERBOT_SMS__ACCESS_KEY_SECRET、ORDERBOT_SMS__SIGN_NAME" in problem.text
    no_templates = e2e_settings.model_copy(update={"sms": SmsSettings(
        access_key_id=KEY_ID, access_key_secret=SecretStr(SECRET), sign_name=SIGN, shipped_template=SHIP)})
    [problem] = [p for p in settings_problems(no_templates, {}) if "短信" in p.text]
    assert "ORDERBOT_SMS__ADDRESS_CHANGED_TEMPLATE、ORDERBOT_SMS__REFUND_TEMPLATE" in problem.text
