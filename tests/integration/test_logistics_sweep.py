"""The tracking sweep on SQLite and PostgreSQL: moves, conflicts, holds, pushes; pushed tracks first, and the\nHTTP poll against the fake courier as the fallback for waybills no push has reached."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
import pytest

from domain import commands as c
from domain.arbitration import CourierReport
from domain.errors import GuardRefused
from domain.users import User
from handlers.bootstrap import build_bus
from handlers.bus import Deps, MessageBus
from handlers.logistics import SweepReport
from integrations.db import tables as t
from integrations.db.courier_tracks import track_row, upsert_tracks
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from integrations.fakes.courier import FakeCourier
from integrations.logistics.kuaidi100 import Kuaidi100Client
from tests.integration.helpers import create_cmd, drive, rows, stock


@pytest.fixture
async def courier() -> AsyncIterator[tuple[FakeCourier, Kuaidi100Client]]:
    async with FakeCourier() as fake, httpx.AsyncClient() as http:
        yield fake, Kuaidi100Client(http, api_base=fake.base_url, customer=fake.customer, key=fake.key)


async def add_users(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        now = Deps().now
        await uow.users.upsert(User("sup1", "王主管", frozenset({"supervisor"})), now)
        await uow.users.upsert(User("wh1", "仓管一", frozenset({"warehouse"}), store="SH01"), now)
        await uow.commit()


async def order_at(bus: MessageBus, external_id: str, *triggers: str, waybill: str) -> str:
    order, _ = await bus.handle(create_cmd(external_id))
    if triggers:
        await drive(bus, order.order_no, *triggers, waybill=waybill)
    return str(order.order_no)


async def logistics_sweep(bus: MessageBus, client: Kuaidi100Client, **options: object) -> SweepReport:
    """The scheduled job: a SweepLogistics command through the bus, polling the fake courier."""
    bus.deps.courier = client
    report: SweepReport = await bus.handle(c.SweepLogistics(**options))  # type: ignore[arg-type]
    return report


async def sweep(db: Database, bus: MessageBus, client: Kuaidi100Client) -> str:
    """Every waybill without a pushed track is old enough to poll (fallback_after 0)."""
    report = await logistics_sweep(bus, client, batch_size=2, concurrency=4, fallback_after=timedelta(0))
    return report.summary()


async def test_sweep_moves_agreeing_orders_and_flags_conflicts(
    db: Database, bus: MessageBus, courier: tuple[FakeCourier, Kuaidi100Client]
) -> None:
    fake, client = courier
    await add_users(db)
    await stock(bus, "SH01", "BP-001", 100)
    moving = await order_at(bus, "DY1", "pick", "check", "pack", "ship", waybill="SF001")
    arrived = await order_at(bus, "DY2", "pick", "check", "pack", "ship", "pick_up", waybill="SF002")
    early = await order_at(bus, "DY3", "pick", "check", "pack", "ship", waybill="SF003")
    not_out = await order_at(bus, "DY4", "pick", "check", "pack", waybill="SF004")
    unknown = await order_at(bus, "DY5", "pick", "check", "pack", "ship", waybill="SF005")
    now = bus.deps.now
    fake.script("SF001", "0", (now, "已揽收"), (now + timedelta(hours=2), "到达上海转运中心"))
    fake.script("SF002", "3", (now + timedelta(hours=5), "已签收，签收人：前台"))
    fake.script("SF003", "3", (now - timedelta(days=1), "已签收"))  # signed a day before we scanned it out
    fake.script("SF004", "3", (now, "已签收"))  # signed while the warehouse still has it packed

    summary = await sweep(db, bus, client)

    assert "新冲突 2 单" in summary
    states = {r["order_no"]: r["state"] for r in await rows(db, t.orders)}
    assert states[moving] == "in_transit"
    assert states[arrived] == "delivered"
    assert states[early] == "delivery_exception"
    assert states[not_out] == "packed"
    assert states[unknown] == "shipped"
    assert {q.num for q in fake.queries} == {"SF001", "SF002", "SF003", "SF004", "SF005"}
    conflicts = await rows(db, t.exceptions, t.exceptions.c.kind == "logistics_conflict")
    assert {(x["order_no"], x["severity"]) for x in conflicts} == {(early, "critical"), (not_out, "critical")}
    assert any("早于出库时间" in x["message"] for x in conflicts)
    pushed = await rows(db, t.outbox, t.outbox.c.recipient == "sup1")
    assert {p["payload"]["title"] for p in pushed} == {f"物流冲突 · {early}", f"物流冲突 · {not_out}"}
    assert all(p["payload"]["highlight"] for p in pushed)
    customer = (await rows(db, t.customers))[0]
    assert customer["settlement_hold"] is True and "物流冲突" in customer["hold_reason"]
    with pytest.raises(GuardRefused, match="结算已冻结"):  # the domain refuses to complete a held customer's order
        await bus.handle(c.FireOrderTrigger(arrived, "complete", by="fin1", via="wecom"))

    await sweep(db, bus, client)  # nothing new: no second exception, no second push
    assert len(await rows(db, t.exceptions, t.exceptions.c.kind == "logistics_conflict")) == 2
    assert len(await rows(db, t.outbox, t.outbox.c.recipient == "sup1")) == 2


async def test_courier_failures_leave_orders_for_the_next_sweep(
    db: Database, bus: MessageBus, courier: tuple[FakeCourier, Kuaidi100Client]
) -> None:
    fake, client = courier
    await stock(bus, "SH01", "BP-001", 100)
    nos = [await order_at(bus, f"DY{i}", "pick", "check", "pack", "ship", waybill=f"SF10{i}") for i in range(3)]
    for i in range(3):
        fake.script(f"SF10{i}", "0", (bus.deps.now, "运输中"))
    fake.fail_next(503, times=2)
    await sweep(db, bus, client)
    states = [r["state"] for r in await rows(db, t.orders)]
    assert states.count("in_transit") == 1 and states.count("shipped") == 2
    await sweep(db, bus, client)
    assert {r["state"] for r in await rows(db, t.orders, t.orders.c.order_no.in_(nos))} == {"in_transit"}


async def test_bad_signature_is_refused_by_the_fake(courier: tuple[FakeCourier, Kuaidi100Client]) -> None:
    fake, client = courier
    fake.script("SF9", "3", (Deps().now, "已签收"))
    client.key = "wrong"
    report = (await client.track_many(["SF9"], gate=asyncio.Semaphore(1)))["SF9"]
    assert report.status == "none" and fake.queries == []


async def pushed(db: Database, waybill: str, status: str, at: datetime, *, signed: bool = False) -> None:
    """A courier_tracks row as a Kuaidi100 push leaves it."""
    report = CourierReport(waybill, status, signed_at=at if signed else None, last_at=at, last_context="推送")
    async with db.engine.begin() as conn:
        await upsert_tracks(conn, [track_row(report, "shunfeng", at)])


async def test_the_fallback_polls_only_old_waybills_without_a_track_and_keeps_what_it_finds(
    db: Database, bus: MessageBus, courier: tuple[FakeCourier, Kuaidi100Client]
) -> None:
    fake, client = courier
    await stock(bus, "SH01", "BP-001", 100)
    tracked = await order_at(bus, "DY1", "pick", "check", "pack", "ship", waybill="SF601")
    silent = [await order_at(bus, f"DY{i}", "pick", "check", "pack", "ship", waybill=f"SF60{i}") for i in (2, 3, 4)]
    now = bus.deps.now
    await pushed(db, "SF601", "in_transit", now)
    for w in ("SF601", "SF602", "SF603", "SF604"):
        fake.script(w, "3", (now + timedelta(hours=1), "已签收"))

    young = await logistics_sweep(bus, client)  # shipped just now: pushes may still come
    assert (young.tracked, young.polled, fake.queries) == (1, 0, [])

    later = build_bus(db, Deps(clock=lambda: now + timedelta(hours=7)))
    first = await logistics_sweep(later, client, fallback_limit=2)  # bounded: two polls per sweep
    assert (first.polled, first.answered) == (2, 2)
    assert {q.num for q in fake.queries} == {"SF602", "SF603"}
    states = {r["order_no"]: r["state"] for r in await rows(db, t.orders)}
    assert states == {tracked: "in_transit", silent[0]: "delivered", silent[1]: "delivered", silent[2]: "shipped"}
    assert {r["waybill"] for r in await rows(db, t.courier_tracks)} == {"SF601", "SF602", "SF603"}

    fake.queries.clear()
    second = await logistics_sweep(later, client, fallback_limit=2)  # the next-oldest, not the same ones
    assert [q.num for q in fake.queries] == ["SF604"] and second.polled == 1
    assert {r["state"] for r in await rows(db, t.orders, t.orders.c.order_no == silent[2])} == {"delivered"}


async def test_signed_at_the_courier_but_the_customer_says_not_received_is_a_conflict(
    db: Database, bus: MessageBus, courier: tuple[FakeCourier, Kuaidi100Client]
) -> None:
    fake, client = courier
    await add_users(db)
    await stock(bus, "SH01", "BP-001", 100)
    missing = await order_at(bus, "DY7", "pick", "check", "pack", "ship", waybill="SF007")
    courier_trouble = await order_at(bus, "DY8", "pick", "check", "pack", "ship", waybill="SF008")
    # customer service records the customer's word; the courier's own trouble report is not the customer
    await bus.handle(c.FireOrderTrigger(missing, "report_exception", by="cs1", via="api", reason="客户称未收到"))
    await bus.handle(c.FireOrderTrigger(courier_trouble, "report_exception", by="logistics_sweep", via="job"))
    later = bus.deps.now + timedelta(hours=6)
    fake.script("SF007", "3", (later, "已签收，签收人：门卫"))
    fake.script("SF008", "3", (later, "已签收"))

    assert "新冲突 1 单" in await sweep(db, bus, client)

    [conflict] = await rows(db, t.exceptions, t.exceptions.c.kind == "logistics_conflict")
    assert conflict["order_no"] == missing and "客户称未收到" in conflict["message"]
    assert (await rows(db, t.customers))[0]["settlement_hold"] is True
