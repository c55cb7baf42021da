"""Scheduled jobs as commands through the bus: stuck orders and safety stock, without a database."""

from __future__ import annotations

from datetime import timedelta

from domain import commands as c
from domain.safety_stock import RegisterSku, SafetyStockPolicy
from handlers.bus import MessageBus
from tests.unit.fakes import FakeUnitOfWork
from tests.unit.handlers.conftest import T0, Clock, create_cmd, stock

SLA = (("split", 30), ("picking", 60))


async def test_a_stuck_order_reaches_its_store_once_and_becomes_an_incident(
    bus: MessageBus, uow: FakeUnitOfWork, clock: Clock
) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(create_cmd("DY1"))
    assert await bus.handle(c.FlagStuckOrders(SLA)) == 0
    clock.advance(minutes=31)
    assert await bus.handle(c.FlagStuckOrders(SLA)) == 1
    assert await bus.handle(c.FlagStuckOrders(SLA)) == 0  # once per order and state
    assert uow.pushed("wh1")[-1] == f"卡单提醒 · {order.order_no}"
    [incident] = await uow.incidents.list_open(kinds=("stuck_order",))
    assert (incident.order_no, incident.store) == (order.order_no, "SH01")


async def test_a_hot_sku_gets_one_suggestion_and_its_non_core_channels_frozen(
    bus: MessageBus, uow: FakeUnitOfWork, clock: Clock
) -> None:
    policy = SafetyStockPolicy(consecutive=1)
    await stock(bus, "SH01", "BP-HOT", 100)
    await bus.handle(RegisterSku("BP-HOT", "刹车片", 10, 2, by="api", via="api"))
    clock.advance(hours=-12)
    for i in range(5):
        await bus.handle(create_cmd(f"DY-{i}", sku="BP-HOT", qty=10))
    clock.advance(hours=12)

    report = await bus.handle(c.EvaluateSafetyStock(policy))
    assert (report.evaluated, report.over, report.suggested, report.frozen) == (1, 1, 1, 3)
    [text] = uow.pushed("cg1")
    assert "BP-HOT" in text and "建议补货" in text
    assert await uow.freezes.active() == {("BP-HOT", "k3"), ("BP-HOT", "kuaishou"), ("BP-HOT", "wholesale")}

    clock.advance(hours=1)
    again = await bus.handle(c.EvaluateSafetyStock(policy))
    assert again.suggested == 0 and len(uow.pushed("cg1")) == 1  # the freeze holds: no second push

    taken, _ = await bus.handle(create_cmd("KS-1", sku="BP-HOT", qty=1, channel="kuaishou"))
    [flagged] = await uow.incidents.list_open(kinds=("frozen_channel_order",))
    assert (flagged.order_no, flagged.sku, taken.state) == (taken.order_no, "BP-HOT", "split")


async def test_a_slow_mover_is_flagged_once_a_week(bus: MessageBus, uow: FakeUnitOfWork, clock: Clock) -> None:
    await stock(bus, "SH01", "BP-OLD", 1500)
    await bus.handle(create_cmd("K3-1", sku="BP-OLD", qty=10, channel="k3"))
    policy = SafetyStockPolicy()
    assert (await bus.handle(c.EvaluateSafetyStock(policy))).slow_movers == 1
    clock.advance(hours=1)
    assert (await bus.handle(c.EvaluateSafetyStock(policy))).slow_movers == 0
    clock.now += timedelta(days=7)
    assert (await bus.handle(c.EvaluateSafetyStock(policy))).slow_movers == 1
    assert [i.sku for i in await uow.incidents.list_open(kinds=("slow_mover",))] == ["BP-OLD", "BP-OLD"]


async def test_two_runs_minutes_apart_are_one_hour_and_the_next_hour_suggests(
    bus: MessageBus, uow: FakeUnitOfWork, clock: Clock
) -> None:
    """Issue 11: with the job on two replicas, evaluations at 10:00 and 10:03 counted as two hours in a row."""
    policy = SafetyStockPolicy()  # two in a row
    await stock(bus, "SH01", "BP-HOT", 100)
    await bus.handle(RegisterSku("BP-HOT", "刹车片", 10, 2, by="api", via="api"))
    clock.advance(hours=-12)
    for i in range(5):
        await bus.handle(create_cmd(f"DY-{i}", sku="BP-HOT", qty=10))
    clock.advance(hours=12)

    for minutes in (0, 3, 5):  # the hourly run, a second replica's, a `jobs run` by hand
        clock.now = T0 + timedelta(minutes=minutes)
        report = await bus.handle(c.EvaluateSafetyStock(policy))
        assert (report.over, report.suggested) == (1, 0)
    assert uow.pushed("cg1") == [] and await uow.freezes.active() == set()

    clock.now = T0 + timedelta(hours=1)
    assert (await bus.handle(c.EvaluateSafetyStock(policy))).suggested == 1
    [text] = uow.pushed("cg1")
    assert "建议补货" in text
