"""Kuaidi100 pushes when no salt is configured (the default), on SQLite and PostgreSQL: with no salt nothing can
be verified, so no push may mark an order delivered or put a customer on settlement hold — not one "signed" with
the empty salt (MD5 of the body alone, which anyone can compute), not an empty sign. Checked where a user would
notice: the order's state, the customer's hold, the exceptions and the pushes to supervisors after the next
logistics sweep (`orderbot jobs run logistics_sweep`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.keys import BUS, DB
from bot.scheduler import job_env, job_specs
from config.settings import LogisticsSettings, Settings
from domain.clock import local
from domain.users import User
from handlers.bus import MessageBus
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from integrations.fakes.courier import FakeCourier
from integrations.logistics.kuaidi100_push import callback_sign
from tests.integration.helpers import create_cmd, drive, rows, stock

CALLBACK = "/channels/kuaidi100/callback"


@dataclass
class Unsalted:
    client: TestClient
    settings: Settings

    @property
    def db(self) -> Database:
        return self.client.server.app[DB]

    @property
    def bus(self) -> MessageBus:
        return self.client.server.app[BUS]

    async def shipped(self, external_id: str, waybill: str) -> str:
        order, _ = await self.bus.handle(create_cmd(external_id))
        await drive(self.bus, order.order_no, "pick", "check", "pack", "ship", waybill=waybill)
        return str(order.order_no)

    async def sweep(self) -> None:
        async with job_env(self.settings, self.db, self.bus, self.bus.deps) as env:
            [job] = [spec for spec in job_specs(self.settings) if spec.id == "logistics_sweep"]
            await job.run(env)


@pytest.fixture
async def unsalted(aiohttp_client: Any, db_url: str) -> Unsalted:
    async with FakeCourier() as fake:  # only so that a fallback poll could never reach the internet
        settings = Settings(database_url=db_url, logistics=LogisticsSettings(
            api_base=fake.base_url, customer=fake.customer, key=fake.key,
            callback_url="https://orderbot.example.com" + CALLBACK))
        assert settings.logistics.salt.get_secret_value() == ""
        client = await aiohttp_client(create_app(settings, deliver=False))
        app = Unsalted(client, settings)
        await stock(app.bus, "SH01", "BP-001", 100)
        async with UnitOfWork(app.db) as uow:
            await uow.users.upsert(User("sup1", "王主管", frozenset({"supervisor"})), app.bus.deps.now)
            await uow.commit()
        yield app


def signed_for_delivery(waybill: str, at: datetime) -> str:
    step = {"time": f"{local(at):%Y-%m-%d %H:%M:%S}", "context": "已签收，签收人：本人"}
    return json.dumps({"status": "polling", "message": "", "lastResult": {
        "state": "3", "ischeck": "1", "nu": waybill, "com": "shunfeng", "data": [step]}}, ensure_ascii=False)


def forged_forms(param: str) -> list[dict[str, str]]:
    """Every sign an outsider can make without the salt: MD5 of the body alone (the empty salt), any case, none."""
    empty_salt = callback_sign(param, "")
    return [{"param": param, "sign": s} for s in (empty_salt, empty_salt.lower(), "", " ")]


async def test_no_push_without_a_salt_marks_delivered_or_holds_a_customer(unsalted: Unsalted) -> None:
    now = unsalted.bus.deps.now
    delivered = await unsalted.shipped("DY1", "SF900")
    early = await unsalted.shipped("DY2", "SF901")
    pushes = [signed_for_delivery("SF900", now + timedelta(minutes=5)),  # would mark it delivered
              signed_for_delivery("SF901", now - timedelta(days=1))]  # signed before shipping: a conflict and a hold
    answers = []
    for param in pushes:
        for form in forged_forms(param):
            resp = await unsalted.client.post(CALLBACK, data=form)
            answers.append((form["sign"], resp.status))

    await unsalted.sweep()
    states = {r["order_no"]: r["state"] for r in await rows(unsalted.db, t.orders)}
    assert states == {delivered: "shipped", early: "shipped"}
    [customer] = await rows(unsalted.db, t.customers)
    assert not customer["settlement_hold"]
    assert await rows(unsalted.db, t.exceptions) == []
    assert await rows(unsalted.db, t.outbox, t.outbox.c.recipient == "sup1") == []
    assert await rows(unsalted.db, t.courier_tracks) == []
    assert [(sign, status) for sign, status in answers if not 400 <= status < 500] == []  # refused, not "成功"
