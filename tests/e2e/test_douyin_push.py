"""Douyin shop pushes over HTTP into the whole app, on SQLite and PostgreSQL, with the fake open API gateway:
signed batches stored once per msg_id and acknowledged, each tag carried to the order, broken elements parked
with a report while the rest of the batch goes on, platform errors retried, and an acknowledged push handled
after a restart."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from bot.app import create_app
from bot.keys import BUS, DB, INBOUND_QUEUE
from config.settings import DouyinSettings, InboxSettings, Settings
from domain import commands as c
from domain.clock import utcnow
from domain.users import User
from integrations.db import tables as t
from integrations.db.uow import UnitOfWork
from integrations.fakes.douyin import FakeDouyin, push_element, signed_push, trade_data
from tests.e2e.harness import later
from tests.integration.helpers import drive

APP_KEY, SECRET, SHOP = "7012345678901234567", "douyin-e2e-secret", "4463798"
CALLBACK = "/channels/douyin/callback"


@dataclass
class Shop:
    client: TestClient
    fake: FakeDouyin
    settings: Settings
    seq: int = 0

    @property
    def app(self) -> Any:
        return self.client.server.app

    async def push(self, *elements: dict[str, Any], secret: str = SECRET, app_id: str = APP_KEY) -> tuple[int, Any]:
        headers, body = signed_push(app_id, secret, elements)
        response = await self.client.post(CALLBACK, data=body, headers=headers)
        return response.status, await response.json()

    def element(self, tag: str, order_id: str, msg_id: str | None = None, **extra: Any) -> dict[str, Any]:
        self.seq += 1
        return push_element(tag, msg_id or f"{order_id}:0:{tag}:{self.seq}", trade_data(tag, order_id, SHOP, **extra))

    async def settle(self) -> None:
        await self.app[INBOUND_QUEUE].drain()

    async def rows(self, table: Any, *where: Any) -> list[dict[str, Any]]:
        async with self.app[DB].engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(select(table).where(*where))]

    async def order(self, external_id: str) -> dict[str, Any]:
        found = await self.rows(t.orders, t.orders.c.channel == "douyin", t.orders.c.external_id == external_id)
        assert len(found) == 1, found
        return found[0]

    async def told(self, role_user: str) -> list[str]:
        found = await self.rows(t.outbox, t.outbox.c.recipient == role_user)
        return [json.dumps(r["payload"], ensure_ascii=False) for r in found]


@pytest.fixture
async def fake_douyin() -> AsyncIterator[FakeDouyin]:
    async with FakeDouyin(APP_KEY, SECRET, SHOP) as fake:
        yield fake


def shop_settings(db_url: str, fake: FakeDouyin) -> Settings:
    return Settings(
        database_url=db_url,
        douyin=DouyinSettings(app_key=APP_KEY, app_secret=SecretStr(SECRET), shop_id=SHOP, api_base=fake.base_url,
                              store="SH01", timeout_s=0.5),
        inbox=InboxSettings(retry_delay_s=0.05, max_attempts=5),
    )


@pytest.fixture
async def shop(aiohttp_client: Any, db_url: str, fake_douyin: FakeDouyin) -> Shop:
    settings = shop_settings(db_url, fake_douyin)
    shop = Shop(await aiohttp_client(create_app(settings, deliver=False)), fake_douyin, settings)
    await shop.app[BUS].handle(c.SetStock("SH01", "BP-001", 50, by="api", via="api"))
    async with UnitOfWork(shop.app[DB]) as uow:
        await uow.users.upsert(User("kf1", "客服小李", frozenset({"service"}), None, "kf1"), utcnow())
        await uow.users.upsert(User("mgr1", "运营经理", frozenset({"manager"}), None, "mgr1"), utcnow())
        await uow.commit()
    return shop


async def test_created_then_paid_makes_one_order_that_is_allocated_once_paid(shop: Shop) -> None:
    shop.fake.add_order("6920000000000000001", status=1, phone="13912345678")
    assert await shop.push(shop.element("100", "6920000000000000001")) == (200, {"code": 0, "msg": "success"})
    await shop.settle()
    order = await shop.order("6920000000000000001")
    assert order["state"] == "pending_payment" and order["customer_id"] == "C00000001"  # found by the buyer's keys
    keys = {k["kind"] for k in await shop.rows(t.customer_keys) if k["customer_id"] == "C00000001"}
    assert {"douyin_buyer", "phone_index"} <= keys  # the buyer id and the phone's search index, never a plain phone
    assert order["customer_phone"] == "139****5678" and order["customer_name"] == "张**"
    assert order["address"].startswith("上海市上海市浦东新区#")  # the detail's ciphertext, as given
    shop.fake.update("6920000000000000001", order_status=105, pay_time=1_760_000_100)
    assert (await shop.push(shop.element("101", "6920000000000000001")))[0] == 200
    await shop.settle()
    order = await shop.order("6920000000000000001")
    assert order["state"] == "split" and order["store"] == "SH01"
    assert len(await shop.rows(t.orders)) == 1


async def test_a_bad_sign_or_an_unknown_app_id_is_refused_and_nothing_is_stored(shop: Shop) -> None:
    shop.fake.add_order("6920000000000000002")
    status, answer = await shop.push(shop.element("100", "6920000000000000002"), secret="guessed")
    assert status == 403 and answer["code"] != 0
    status, _ = await shop.push(shop.element("100", "6920000000000000002"), app_id="7099999999999999999")
    assert status == 403
    headers, body = signed_push(APP_KEY, SECRET, [shop.element("100", "6920000000000000002")])
    response = await shop.client.post(CALLBACK, data=body + b" ", headers=headers)  # changed after signing
    assert response.status == 403
    await shop.settle()
    assert await shop.rows(t.inbound_messages) == [] and await shop.rows(t.orders) == []
    assert shop.fake.count("order.orderDetail") == 0


async def test_a_re_sent_msg_id_is_acknowledged_and_applied_once(shop: Shop) -> None:
    shop.fake.add_order("6920000000000000003")
    refund = shop.element("200", "6920000000000000003", msg_id="7000000000000000001:0:200:1", refund_amount=5_000)
    for _ in range(3):
        assert await shop.push(refund) == (200, {"code": 0, "msg": "success"})
        await shop.settle()
    assert len(await shop.rows(t.inbound_messages)) == 1
    assert len(await shop.rows(t.aftersales)) == 1
    assert shop.fake.count("order.orderDetail") == 1


async def test_address_change_goes_the_改地址_way_and_is_refused_after_shipping(shop: Shop) -> None:
    shop.fake.add_order("6920000000000000004")
    shop.fake.add_order("6920000000000000005")
    await shop.push(shop.element("101", "6920000000000000004"), shop.element("101", "6920000000000000005"))
    await shop.settle()
    shop.fake.change_address("6920000000000000004", "世纪大道100号")
    await shop.push(shop.element("105", "6920000000000000004"))
    await shop.settle()
    changed = await shop.order("6920000000000000004")
    assert changed["address"].endswith("#") and changed["address"] != (await shop.order("6920000000000000005"))["address"]
    shipped = await shop.order("6920000000000000005")
    await drive(shop.app[BUS], shipped["order_no"], "pick", "check", "pack", "ship", waybill="SF1234567890")
    shop.fake.change_address("6920000000000000005", "世纪大道200号")
    assert (await shop.push(shop.element("105", "6920000000000000005")))[0] == 200
    await shop.settle()
    assert (await shop.order("6920000000000000005"))["address"] == shipped["address"]
    assert any("已发货，不能改地址" in text for text in await shop.told("kf1"))
    rows = await shop.rows(t.inbound_messages, t.inbound_messages.c.platform == "douyin")
    assert all(r["processed_at"] is not None and r["parked_at"] is None for r in rows)  # refused is handled


async def test_cancel_releases_the_stock_and_a_refund_opens_an_aftersale(shop: Shop) -> None:
    shop.fake.add_order("6920000000000000006", qty=3)
    shop.fake.add_order("6920000000000000007")
    await shop.push(shop.element("101", "6920000000000000006"), shop.element("101", "6920000000000000007"))
    await shop.settle()
    shop.fake.update("6920000000000000006", order_status=4)
    await shop.push(shop.element("106", "6920000000000000006", cancel_reason="不想要了"),
                    shop.element("200", "6920000000000000007", refund_amount=10_000, aftersale_type=2))
    await shop.settle()
    assert (await shop.order("6920000000000000006"))["state"] == "cancelled"
    stock = await shop.rows(t.inventory, t.inventory.c.sku == "BP-001")
    assert stock[0]["reserved"] == 2  # only the other order's two
    cases = await shop.rows(t.aftersales)
    assert len(cases) == 1 and cases[0]["amount_fen"] == 10_000 and cases[0]["kind"] == "refund"
    assert cases[0]["order_no"] == (await shop.order("6920000000000000007"))["order_no"]


async def test_one_broken_element_never_fails_the_others_and_is_parked_with_a_report(
    shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    shop.fake.add_order("6920000000000000008")
    shop.fake.add_order("6920000000000000009", sku="")  # no 商家编码: cannot be mapped
    caplog.set_level(logging.INFO, logger="bot.channels_douyin")
    batch = [
        shop.element("100", "6920000000000000008"),
        {"tag": "100", "data": "{}"},  # no msg_id: skipped
        {"tag": "101", "msg_id": "broken-data", "data": "{not json"},
        shop.element("100", "6920000000000000009", msg_id="unmappable"),
        shop.element("999", "6920000000000000008", msg_id="unknown-tag"),
        "not an object",
    ]
    assert await shop.push(*batch) == (200, {"code": 0, "msg": "success"})  # type: ignore[arg-type]
    await shop.settle()
    assert (await shop.order("6920000000000000008"))["state"] == "split"
    inbox = {r["message_id"]: r for r in await shop.rows(t.inbound_messages)}
    assert set(inbox) == {batch[0]["msg_id"], "broken-data", "unmappable"}  # type: ignore[index]
    for dead in ("broken-data", "unmappable"):
        assert inbox[dead]["parked_at"] is not None and inbox[dead]["attempts"] == 1  # at once: never looped
    assert "sku_order_list[0].code" in inbox["unmappable"]["last_error"]
    assert any("多次处理失败" in text for text in await shop.told("mgr1"))
    assert any("tag '999'" in r.message and r.levelno == logging.INFO for r in caplog.records)


async def test_platform_errors_are_retried_until_the_gateway_recovers(shop: Shop) -> None:
    shop.fake.add_order("6920000000000000010")
    shop.fake.fail_next(code=20000)  # 服务不可用
    shop.fake.fail_next(status=502)
    shop.fake.stall_next(2.0)  # the client gives up after 0.5 s
    assert (await shop.push(shop.element("101", "6920000000000000010")))[0] == 200
    await shop.settle()
    assert (await shop.order("6920000000000000010"))["state"] == "split"
    [row] = await shop.rows(t.inbound_messages)
    assert row["processed_at"] is not None and row["attempts"] >= 2 and row["parked_at"] is None


async def test_an_expired_token_is_fetched_again_once(shop: Shop) -> None:
    shop.fake.add_order("6920000000000000011")
    await shop.push(shop.element("101", "6920000000000000011"))
    await shop.settle()
    shop.fake.expire_tokens()
    shop.fake.add_order("6920000000000000012")
    await shop.push(shop.element("101", "6920000000000000012"))
    await shop.settle()
    assert len(await shop.rows(t.orders)) == 2 and shop.fake.tokens_issued == 2


async def test_a_push_acknowledged_before_a_crash_is_handled_after_the_restart(
    shop: Shop, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop.fake.add_order("6920000000000000013")
    queue = shop.app[INBOUND_QUEUE]
    monkeypatch.setattr(queue, "_spawn", lambda msg, replayed=False: None)  # acked, then the process died
    assert await shop.push(shop.element("101", "6920000000000000013")) == (200, {"code": 0, "msg": "success"})
    assert await shop.rows(t.orders) == []
    restarted = await aiohttp_client(create_app(shop.settings, deliver=False))
    assert await restarted.server.app[INBOUND_QUEUE].sweep(later()) == 1
    await restarted.server.app[INBOUND_QUEUE].drain()
    assert (await shop.order("6920000000000000013"))["state"] == "split"


async def test_a_body_past_the_limit_is_refused_and_nothing_is_stored(shop: Shop) -> None:
    elements = [shop.element("100", f"69200000000{i:08d}") for i in range(1000)]
    headers, body = signed_push(APP_KEY, SECRET, elements)
    assert len(body) > shop.settings.http.max_body_bytes
    response = await shop.client.post(CALLBACK, data=body, headers=headers)
    assert response.status == 413
    assert await shop.rows(t.inbound_messages) == []
