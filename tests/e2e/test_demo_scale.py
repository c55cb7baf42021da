"""The demo at the case's scale, and the console's scenario buttons driving the real paths."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from bot.demo import API_TOKEN
from bot.demo_data import STORES
from bot.keys import DB
from domain.order_lifecycle import STATES
from integrations.db import tables as t
from integrations.db.uow import UnitOfWork
from tests.e2e.test_demo import Client, cards, demo, wait_for

__all__ = ["demo"]  # the fixture, shared with test_demo


async def test_seeded_at_the_case_scale(demo: Client) -> None:
    async with UnitOfWork(demo.app[DB]) as uow:
        users = await uow.users.list()
        stores = set(await uow.inventory.stores())
        skus = (await uow.conn.execute(select(func.count()).select_from(t.skus))).scalar_one()
        states = Counter((await uow.conn.execute(select(t.orders.c.state))).scalars().all())
        audited = (await uow.conn.execute(select(func.count()).select_from(t.audit_log))).scalar_one()
    assert len(STORES) == 18 and stores == set(STORES)
    assert len(users) == 62
    roles = Counter(r for u in users for r in u.roles)
    assert roles["warehouse"] == 42 and all(roles[r] >= 2 for r in ("manager", "supervisor", "service",
                                                                       "purchasing", "finance"))
    assert {u.store for u in users if "warehouse" in u.roles} == set(STORES)  # someone in every store's warehouse
    assert skus >= 300
    assert set(states) == {s.id for s in STATES}  # every state of the lifecycle
    assert sum(states.values()) >= 300
    assert audited > sum(states.values()) * 3  # seeded through the bus: every step on the trail


async def test_dashboard_is_filled(demo: Client) -> None:
    response = await demo.get("/api/v1/health", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert response.status == 200, await response.text()
    today = (await response.json())["ranges"]["today"]
    assert today["processing"]["overall_s"] > 0 and today["processing"]["shipped"] >= 100
    by_state = {row["state"]: row["count"] for row in today["orders_by_state"]}
    assert by_state["completed"] >= 40 and by_state["delivery_exception"] >= 4


async def test_address_change_mid_picking_reaches_the_store_warehouse(demo: Client) -> None:
    response = await demo.post("/demo/api/scenario/address_change")
    assert response.status == 200, await response.text()
    outcome = await response.json()
    order_no, watch = outcome["order_no"], outcome["watch"]
    assert any(w.startswith("wh_") for w in watch) and "fin1" in watch
    async with UnitOfWork(demo.app[DB]) as uow:
        order = await uow.orders.get(order_no)
    assert order is not None and "南京西路1266号" in order.address and order.state == "picking"
    await wait_for(demo, "fin1", lambda got: any(order_no in m.get("content", "") for m in got))
    warehouse = next(w for w in watch if w.startswith("wh_"))
    await wait_for(demo, warehouse, lambda got: any(
        order_no in m.get("content", "") + str(m.get("card", "")) and "地址" in m.get("content", "") + str(m.get("card", ""))
        for m in got))


async def test_courier_signature_before_outbound_is_a_conflict(demo: Client) -> None:
    response = await demo.post("/demo/api/scenario/courier_signed")
    assert response.status == 200, await response.text()
    outcome = await response.json()
    order_no = outcome["order_no"]
    assert outcome["conflicts"] == 1
    got = await wait_for(demo, "sup1", lambda m: f"logistics-conflict-{order_no}" in cards(m))
    assert "物流冲突" in cards(got)[f"logistics-conflict-{order_no}"]["card"]["title"]
    async with UnitOfWork(demo.app[DB]) as uow:
        order = await uow.orders.get(order_no)
    assert order is not None and order.state == "packed" and order.settlement_hold  # never left: stays put, held


async def test_brake_pad_surge_runs_short_and_tells_the_supervisors(demo: Client) -> None:
    response = await demo.post("/demo/api/scenario/brake_surge")
    assert response.status == 200, await response.text()
    outcome = await response.json()
    assert len(outcome["orders"]) == 15 and outcome["out_of_stock"]
    short = outcome["out_of_stock"][0]
    await wait_for(demo, "sup1", lambda got: any("缺货" in m.get("content", "") and short in m.get("content", "")
                                                 for m in got), within_s=30)
    async with UnitOfWork(demo.app[DB]) as uow:
        opened = (await uow.conn.execute(select(t.exceptions.c.order_no).where(
            t.exceptions.c.kind == "out_of_stock"))).scalars().all()
    assert set(outcome["out_of_stock"]) <= set(opened)
