"""Kuaidi100 subscription push over HTTP, on SQLite and PostgreSQL: subscribe on shipping through the outbox,
signed callbacks into courier_tracks, a conflict flagged as it is pushed, and the next sweep arbitrating from what
was pushed."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.keys import BUS, DB, DISPATCHER
from config.settings import LogisticsSettings, Settings
from domain import commands as c
from domain.users import User
from handlers.bus import MessageBus
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from integrations.fakes.courier import FakeCourier
from integrations.logistics.kuaidi100 import Kuaidi100Client
from integrations.logistics.kuaidi100_push import callback_sign
from tests.integration.helpers import create_cmd, drive, rows, stock

SALT = "push-salt-0123"
CALLBACK = "/channels/kuaidi100/callback"


@dataclass
class PushApp:
    client: TestClient
    fake: FakeCourier
    callback_url: str

    @property
    def db(self) -> Database:
        return self.client.server.app[DB]

    @property
    def bus(self) -> MessageBus:
        return self.client.server.app[BUS]

    async def deliver_outbox(self) -> None:
        while await self.client.server.app[DISPATCHER].run_once():
            pass

    async def shipped(self, external_id: str, waybill: str) -> str:
        order, _ = await self.bus.handle(create_cmd(external_id))
        await drive(self.bus, order.order_no, "pick", "check", "pack", "ship", waybill=waybill)
        return str(order.order_no)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def push_app(aiohttp_client: Any, db_url: str) -> AsyncIterator[PushApp]:
    async with FakeCourier() as fake:
        port = free_port()
        url = f"http://127.0.0.1:{port}{CALLBACK}"
        settings = Settings(database_url=db_url, logistics=LogisticsSettings(
            api_base=fake.base_url, customer=fake.customer, key=fake.key, callback_url=url, salt=SALT))
        client = await aiohttp_client(create_app(settings, deliver=False), server_kwargs={"port": port})
        app = PushApp(client, fake, url)
        await stock(app.bus, "SH01", "BP-001", 100)
        async with UnitOfWork(app.db) as uow:
            await uow.users.upsert(User("sup1", "王主管", frozenset({"supervisor"})), app.bus.deps.now)
            await uow.commit()
        yield app


def signed_form(waybill: str, state: str, time: str, *, salt: str = SALT) -> dict[str, str]:
    param = json.dumps({"status": "polling", "lastResult": {
        "state": state, "nu": waybill, "com": "shunfeng", "data": [{"time": time, "context": "已签收"}]}},
        ensure_ascii=False)
    return {"param": param, "sign": callback_sign(param, salt)}


async def test_a_bad_sign_is_refused_and_nothing_is_stored(push_app: PushApp) -> None:
    wrong = await push_app.client.post(CALLBACK, data=signed_form("SF1", "3", "2024-05-01 10:00:00", salt="guess"))
    missing = await push_app.client.post(CALLBACK, data={"param": signed_form("SF1", "3", "2024-05-01 10:00:00")["param"]})
    unsigned_junk = await push_app.client.post(CALLBACK, data={"param": "{", "sign": callback_sign("{", "guess")})
    assert (wrong.status, missing.status, unsigned_junk.status) == (403, 400, 403)
    assert (await wrong.json())["result"] is False
    assert await rows(push_app.db, t.courier_tracks) == []


async def test_a_good_push_stores_then_updates_the_latest_track(push_app: PushApp) -> None:
    now = push_app.bus.deps.now
    fake, url = push_app.fake, push_app.callback_url
    first = await fake.push("SF200", "0", [(now - timedelta(hours=3), "已揽收"), (now - timedelta(hours=2), "到达上海转运中心")],
                            callback_url=url, salt=SALT)
    assert first.status_code == 200 and first.json() == {"result": True, "returnCode": "200", "message": "成功"}
    [track] = await rows(push_app.db, t.courier_tracks)
    assert (track["waybill"], track["status"], track["last_context"], track["signed_at"]) == (
        "SF200", "in_transit", "到达上海转运中心", None)

    await fake.push("SF200", "3", [(now - timedelta(hours=2), "到达上海转运中心"), (now - timedelta(minutes=5), "已签收")],
                    callback_url=url, salt=SALT)
    late = await push_app.client.post(CALLBACK, data=signed_form("SF200", "0", "2020-01-01 08:00:00"))  # a stale retry
    assert late.status == 200
    [track] = await rows(push_app.db, t.courier_tracks)
    assert (track["status"], track["last_context"]) == ("signed", "已签收")
    assert abs(track["signed_at"] - (now - timedelta(minutes=5))) < timedelta(seconds=1)


async def test_shipping_subscribes_each_waybill_once_through_the_outbox(push_app: PushApp) -> None:
    fake = push_app.fake
    a = await push_app.shipped("DY1", "SF300")
    await push_app.shipped("DY2", "SF300")  # two orders in one parcel: one subscription
    await push_app.shipped("DY3", "JD301")
    assert fake.subscriptions == {}  # nothing leaves before the outbox is delivered

    await push_app.deliver_outbox()
    await push_app.deliver_outbox()

    assert fake.subscribe_requests == 2 and set(fake.subscriptions) == {"SF300", "JD301"}
    sub = fake.subscriptions["SF300"]
    assert (sub.company, sub.callback_url, sub.salt, sub.phone) == ("shunfeng", push_app.callback_url, SALT, "13800000000")
    assert fake.subscriptions["JD301"].company == "jd"
    sent = await rows(push_app.db, t.outbox, t.outbox.c.channel == "courier")
    assert [(r["kind"], r["recipient"], r["status"]) for r in sent] == [
        ("subscribe", "SF300", "delivered"), ("subscribe", "JD301", "delivered")]
    assert sent[0]["payload"]["order_no"] == a

    # the subscription's own callback URL and salt lead back to us
    answer = await fake.push("SF300", "1", [(push_app.bus.deps.now, "已揽收")])
    assert answer.json()["result"] is True
    assert [r["status"] for r in await rows(push_app.db, t.courier_tracks)] == ["picked_up"]


async def test_a_refused_subscription_is_dead_not_retried(push_app: PushApp) -> None:
    push_app.fake.key = "another-account"  # our key is refused: returnCode 600
    await push_app.shipped("DY1", "SF400")
    await push_app.deliver_outbox()
    [row] = await rows(push_app.db, t.outbox, t.outbox.c.channel == "courier")
    assert row["status"] == "dead" and "600" in row["last_error"]
    assert push_app.fake.subscribe_requests == 1


async def test_a_push_signed_before_shipping_is_flagged_and_the_next_sweep_moves_the_rest(push_app: PushApp) -> None:
    early = await push_app.shipped("DY1", "SF500")
    moving = await push_app.shipped("DY2", "SF501")
    await push_app.deliver_outbox()
    now = push_app.bus.deps.now
    await push_app.fake.push("SF500", "3", [(now - timedelta(days=1), "已签收，签收人：前台")])
    await push_app.fake.push("SF501", "0", [(now, "已揽收"), (now + timedelta(minutes=1), "运输中")])

    async with httpx.AsyncClient() as http:
        poller = Kuaidi100Client(http, api_base=push_app.fake.base_url, customer=push_app.fake.customer,
                                 key=push_app.fake.key)
        push_app.bus.deps.courier = poller
        report = await push_app.bus.handle(c.SweepLogistics(batch_size=1))
    assert (report.tracked, report.polled, report.conflicts) == (2, 0, 0)  # flagged by the push already, not again
    assert push_app.fake.queries == []  # arbitrated from the pushes alone
    states = {r["order_no"]: r["state"] for r in await rows(push_app.db, t.orders)}
    assert states == {early: "delivery_exception", moving: "in_transit"}
    [conflict] = await rows(push_app.db, t.exceptions, t.exceptions.c.kind == "logistics_conflict")
    assert conflict["order_no"] == early and "早于出库时间" in conflict["message"]
    [customer] = await rows(push_app.db, t.customers)
    assert customer["settlement_hold"] is True
    pushed = await rows(push_app.db, t.outbox, t.outbox.c.recipient == "sup1")
    assert [p["payload"]["title"] for p in pushed] == [f"物流冲突 · {early}"] and pushed[0]["payload"]["highlight"]


async def test_a_packed_parcel_pushed_signed_is_flagged_at_once_without_a_sweep(push_app: PushApp) -> None:
    order, _ = await push_app.bus.handle(create_cmd("DY3"))
    await drive(push_app.bus, order.order_no, "pick", "check", "pack", waybill="SF600")
    moving = await push_app.shipped("DY4", "SF601")
    now = push_app.bus.deps.now
    url = push_app.callback_url

    signed = await push_app.fake.push("SF600", "3", [(now, "已签收，签收人：前台代收")], callback_url=url, salt=SALT)
    await push_app.fake.push("SF601", "0", [(now, "已揽收")], callback_url=url, salt=SALT)

    assert signed.status_code == 200
    [conflict] = await rows(push_app.db, t.exceptions, t.exceptions.c.kind == "logistics_conflict")
    assert conflict["order_no"] == order.order_no and "尚未出库" in conflict["message"]
    pushed = await rows(push_app.db, t.outbox, t.outbox.c.recipient == "sup1")
    assert [(p["payload"]["title"], p["urgent"]) for p in pushed] == [(f"物流冲突 · {order.order_no}", True)]
    states = {r["order_no"]: r["state"] for r in await rows(push_app.db, t.orders)}
    assert states == {order.order_no: "packed", moving: "shipped"}  # moves wait for the sweep, which batches them
