"""Dynamic safety stock on SQLite and PostgreSQL: the case's brake pads (+400 % on short video) reach purchasing at
the second hourly evaluation and are frozen on the non-core channels; a steady SKU never does; a slow mover is
flagged once; the demand-signal, SKU and unfreeze routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.keys import DB
from config.settings import ApiSettings, Settings
from domain import commands as c
from domain.safety_stock import RecordDemandSignal, RegisterSku, SafetyStockPolicy
from domain.users import User
from handlers.bootstrap import build_bus
from handlers.bus import Deps, MessageBus
from handlers.safety_stock import policy_of
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from tests.integration.helpers import rows, stock

T0 = datetime(2026, 1, 20, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
HOUR = timedelta(hours=1)
TOKEN = "t0k"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POLICY = SafetyStockPolicy()

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def client(aiohttp_client: ClientFactory, db_url: str) -> Client:
    settings = Settings(database_url=db_url, api=ApiSettings(token=TOKEN))
    return await aiohttp_client(create_app(settings, deliver=False))


def order(external_id: str, channel: str, sku: str, qty: int) -> c.CreateOrder:
    return c.CreateOrder(
        channel=channel, external_id=external_id, customer_id="C-4S-01", customer_name="浦东4S店",
        address="上海市浦东新区张杨路500号", store="SH01", paid=True,
        lines=(c.LineInput(sku, qty, 19_900, "刹车片"),), by="api", via="api",
    )


async def seed(db: Database, clock: Clock) -> MessageBus:
    """BP-HOT: 10 a day on Douyin for 6 days, 50 in the last day. BP-STEADY: 10 a day. BP-OLD: 10 a day on K3
    against 1,500 in stock (150 days of turnover)."""
    async with UnitOfWork(db) as uow:
        for user in (User("cg1", "采购小陈", frozenset({"purchasing"})), User("sup1", "王主管", frozenset({"supervisor"}))):
            await uow.users.upsert(user, T0)
        await uow.commit()
    bus = build_bus(db, Deps(clock=clock))
    clock.now = T0 - timedelta(days=8)
    for sku, on_hand, lead in (("BP-HOT", 150, 2), ("BP-STEADY", 100, 2), ("BP-OLD", 1500, 7)):
        await stock(bus, "SH01", sku, on_hand)
        await bus.handle(RegisterSku(sku, f"刹车片 {sku}", 60, lead, by="api", via="api"))
    for day in range(6, 0, -1):
        clock.now = T0 - timedelta(days=day, hours=12)
        await bus.handle(order(f"DY-HOT-{day}", "douyin", "BP-HOT", 10))
        await bus.handle(order(f"DY-STEADY-{day}", "douyin", "BP-STEADY", 10))
        await bus.handle(order(f"K3-OLD-{day}", "k3", "BP-OLD", 10))
    clock.now = T0 - timedelta(hours=12)
    for i in range(5):
        await bus.handle(order(f"DY-HOT-0-{i}", "douyin", "BP-HOT", 10))
    await bus.handle(order("DY-STEADY-0", "douyin", "BP-STEADY", 10))
    await bus.handle(order("K3-OLD-0", "k3", "BP-OLD", 10))
    signals = (  # cart adds 60 + 40 in the last day (500 older ones do not count); live: 1,500 + 500 viewers now
        ("douyin", "cart_add", 500, T0 - timedelta(hours=30)),
        ("douyin", "cart_add", 60, T0 - 3 * HOUR),
        ("douyin", "cart_add", 40, T0 - 2 * HOUR),
        ("douyin", "live_viewers", 800, T0 - timedelta(minutes=90)),
        ("douyin", "live_viewers", 1500, T0 - timedelta(minutes=10)),
        ("kuaishou", "live_viewers", 500, T0 - timedelta(minutes=5)),
    )
    for channel, kind, value, at in signals:
        await bus.handle(RecordDemandSignal("BP-HOT", channel, kind, value, at, by="api", via="api"))
    clock.now = T0
    return bus


async def pushed(db: Database, recipient: str, marker: str) -> list[str]:
    found = await rows(db, t.outbox, t.outbox.c.recipient == recipient)
    return [r["payload"]["text"] for r in found if marker in r["payload"].get("text", "")]


async def run_hourly(db: Database, bus: MessageBus, clock: Clock, at: datetime) -> None:
    clock.now = at
    await bus.handle(c.EvaluateSafetyStock(POLICY))


async def test_brake_pads_reach_purchasing_at_the_second_hourly_evaluation(client: Client) -> None:
    db, clock = client.app[DB], Clock()
    bus = await seed(db, clock)

    await run_hourly(db, bus, clock, T0)
    assert await pushed(db, "cg1", "补货建议") == []  # over once: not yet
    assert await rows(db, t.sku_freezes) == []

    await run_hourly(db, bus, clock, T0 + HOUR)
    [text] = await pushed(db, "cg1", "补货建议")
    # forecast 2 × (0.7 × 50 + 0.3 × 110/7) + 100 × 0.3 + 2000 × 0.002 × 4 = 125.4; available 150 − 110 = 40;
    # margin ceil(125.4 / 2 × 2) = 126; quantity ceil(125.4 + 126 − 40) = 212
    assert '<font color="warning">补货建议</font>' in text
    assert "建议补货 212 件" in text and "125.4" in text and "可用库存 40 件" in text
    assert "k3、kuaishou、wholesale" in text

    for hour in (2, 3):  # the suggestion stays open while the freeze holds: no second push
        await run_hourly(db, bus, clock, T0 + hour * HOUR)
    assert len(await pushed(db, "cg1", "补货建议")) == 1

    hot = await rows(db, t.stock_evaluations, t.stock_evaluations.c.sku == "BP-HOT")
    assert [(r["over"], r["class"], r["suggested_qty"]) for r in hot] == [
        (True, "A", None), (True, "A", 212), (True, "A", None), (True, "A", None),
    ]
    assert hot[0]["forecast"] == pytest.approx(125.429, abs=1e-3) and hot[0]["threshold"] == 60
    steady = await rows(db, t.stock_evaluations, t.stock_evaluations.c.sku == "BP-STEADY")
    assert [(r["over"], r["suggested_qty"]) for r in steady] == [(False, None)] * 4  # forecast 20 < 90
    assert await rows(db, t.stock_evaluations, t.stock_evaluations.c.sku == "BP-OLD") == []  # not A (K3 only)

    freezes = await rows(db, t.sku_freezes)
    assert sorted((f["sku"], f["channel"], f["lifted_at"]) for f in freezes) == [
        ("BP-HOT", "k3", None), ("BP-HOT", "kuaishou", None), ("BP-HOT", "wholesale", None),
    ]
    audited = await rows(db, t.audit_log, t.audit_log.c.entity == "sku", t.audit_log.c.action == "freeze")
    assert sorted(a["detail"]["channel"] for a in audited) == ["k3", "kuaishou", "wholesale"]

    # the slow mover: flagged once to the supervisor, with one exceptions row, over four runs
    [slow] = await pushed(db, "sup1", "滞销提醒")
    assert "BP-OLD" in slow and "周转天数 150 天" in slow
    flagged = await rows(db, t.exceptions, t.exceptions.c.kind == "slow_mover")
    assert [x["sku"] for x in flagged] == ["BP-OLD"]

    # a new order for the frozen SKU on a frozen channel is taken, and flagged
    clock.now = T0 + 3 * HOUR + timedelta(minutes=5)
    frozen_order, created = await bus.handle(order("KS-1", "kuaishou", "BP-HOT", 2))
    assert created and frozen_order.state == "split"
    await bus.handle(order("MP-1", "miniprogram", "BP-HOT", 1))  # a core channel: nothing to flag
    [x] = await rows(db, t.exceptions, t.exceptions.c.kind == "frozen_channel_order")
    assert (x["order_no"], x["sku"]) == (frozen_order.order_no, "BP-HOT")
    assert len(await pushed(db, "sup1", "冻结渠道来单")) == 1

    # purchasing lifts the freeze once the goods are in
    resp = await client.post("/api/v1/skus/BP-HOT/unfreeze", json={"by": "cg1"}, headers=AUTH)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"sku": "BP-HOT", "lifted": ["k3", "kuaishou", "wholesale"]}
    assert {(f["lifted_by"], f["lifted_at"] is not None) for f in await rows(db, t.sku_freezes)} == {("cg1", True)}
    lifted = await rows(db, t.audit_log, t.audit_log.c.action == "unfreeze")
    assert [(a["actor"], a["via"]) for a in lifted] == [("cg1", "api")] * 3
    resp = await client.post("/api/v1/skus/BP-HOT/unfreeze", headers=AUTH)
    assert resp.status == 404

    # still hot the same day, no freeze held: still once per SKU per day
    await run_hourly(db, bus, clock, T0 + 4 * HOUR)
    assert len(await pushed(db, "cg1", "补货建议")) == 1
    assert len(await rows(db, t.sku_freezes)) == 3


async def test_a_steady_sku_never_gets_a_suggestion(client: Client) -> None:
    db, clock = client.app[DB], Clock()
    bus = await seed(db, clock)
    for hour in range(5):
        await run_hourly(db, bus, clock, T0 + hour * HOUR)
    steady = await rows(db, t.stock_evaluations, t.stock_evaluations.c.sku == "BP-STEADY")
    assert [(r["class"], r["over"], r["forecast"]) for r in steady] == [("A", False, pytest.approx(20))] * 5
    assert [text for text in await pushed(db, "cg1", "补货建议") if "BP-STEADY" in text] == []
    assert [f for f in await rows(db, t.sku_freezes) if f["sku"] == "BP-STEADY"] == []


async def test_sku_and_demand_signal_routes(client: Client) -> None:
    db = client.app[DB]
    resp = await client.put(
        "/api/v1/skus/BP-HOT", json={"name": "陶瓷刹车片", "replenish_threshold": 60, "lead_time_days": 2}, headers=AUTH
    )
    assert resp.status == 200, await resp.text()
    resp = await client.put("/api/v1/skus/BP-HOT", json={"name": "陶瓷刹车片", "replenish_threshold": 80}, headers=AUTH)
    assert await resp.json() == {"sku": "BP-HOT", "name": "陶瓷刹车片", "replenish_threshold": 80, "lead_time_days": 0}
    assert [(s["sku"], s["replenish_threshold"]) for s in await rows(db, t.skus)] == [("BP-HOT", 80)]
    resp = await client.put("/api/v1/skus/BP-HOT", json={"replenish_threshold": -1}, headers=AUTH)
    assert resp.status == 400 and "replenish_threshold" in (await resp.json())["message"]

    good: list[dict[str, Any]] = [
        {"sku": "BP-HOT", "channel": "douyin", "kind": "cart_add", "value": 12},
        {"sku": "BP-HOT", "channel": "douyin", "kind": "live_viewers", "value": 0, "at": "2026-01-20T10:00:00+08:00"},
    ]
    for body in good:
        resp = await client.post("/api/v1/demand-signals", json=body, headers=AUTH)
        assert resp.status == 202, await resp.text()
        assert await resp.json() == {"accepted": True}
    stored = await rows(db, t.demand_signals)
    assert [(s["kind"], s["value"]) for s in stored] == [("cart_add", 12), ("live_viewers", 0)]
    assert stored[1]["at"] == T0  # 10:00 in Shanghai

    bad = {
        "kind": {"sku": "BP-HOT", "channel": "douyin", "kind": "likes", "value": 1},
        "value": {"sku": "BP-HOT", "channel": "douyin", "kind": "cart_add", "value": -1},
        "sku": {"channel": "douyin", "kind": "cart_add", "value": 1},
        "at": {"sku": "BP-HOT", "channel": "douyin", "kind": "cart_add", "value": 1, "at": "2026-01-20T10:00:00"},
    }
    for field, body in bad.items():
        resp = await client.post("/api/v1/demand-signals", json=body, headers=AUTH)
        assert resp.status == 400, field
        data = await resp.json()
        assert data["error"] == "invalid_body" and field in data["message"], data
    resp = await client.post("/api/v1/demand-signals", json=good[0])
    assert resp.status == 401
    assert len(await rows(db, t.demand_signals)) == 2


async def test_a_second_run_minutes_after_the_hourly_one_is_not_the_next_hour(client: Client) -> None:
    """Two replicas (or a `jobs run` by hand) evaluating at 10:00 and 10:04: one hour, so no suggestion yet."""
    db, clock = client.app[DB], Clock()
    bus = await seed(db, clock)
    policy = policy_of(**Settings().safety_stock.model_dump())
    for at in (T0, T0 + timedelta(minutes=4)):
        clock.now = at
        await bus.handle(c.EvaluateSafetyStock(policy))
    assert await pushed(db, "cg1", "补货建议") == [] and await rows(db, t.sku_freezes) == []
    clock.now = T0 + HOUR
    await bus.handle(c.EvaluateSafetyStock(policy))
    assert len(await pushed(db, "cg1", "补货建议")) == 1
