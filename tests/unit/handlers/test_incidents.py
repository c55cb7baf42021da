"""Incidents (异常) and settlement holds: claimed, resolved, released and escalated, without a database."""

from __future__ import annotations

import pytest

from domain import commands as c
from domain.customers import Customer
from domain.errors import GuardRefused, NotFound
from domain.events import Audited
from domain.users import User
from handlers import worklists
from handlers.bus import MessageBus
from tests.unit.fakes import FakeUnitOfWork
from tests.unit.handlers.conftest import T0, Clock


async def open_one(uow: FakeUnitOfWork, kind: str = "stuck_order", severity: str = "warning") -> int:
    await uow.incidents.open(kind=kind, order_no="OB00000001", store="SH01", severity=severity,
                             message="订单 OB00000001 在「拣货中」已超过 60 分钟，请尽快处理。", at=T0)
    return max(uow.incidents.rows)


async def test_an_incident_is_claimed_once_then_resolved(uow: FakeUnitOfWork) -> None:
    number = await open_one(uow)
    incident = await worklists.load_exception(uow, f"#{number}")
    await worklists.ack_exception(uow, incident, by="wh1", via="wecom", at=T0)

    again = await worklists.load_exception(uow, str(number))
    with pytest.raises(GuardRefused, match="已由 仓管一 于 10:00 认领"):
        await worklists.ack_exception(uow, again, by="sup1", via="wecom", at=T0)

    await worklists.resolve_exception(uow, again, "已补拣", by="sup1", via="wecom", at=T0)
    stored = uow.incidents.rows[number]
    assert (stored.status, stored.acknowledged_by, stored.resolved_by, stored.resolution) == (
        "resolved", "wh1", "sup1", "已补拣",
    )
    trail = [e.change() for e in uow.pop_events() if isinstance(e, Audited)]  # the bus writes these lines
    assert [(a.action, a.from_state, a.to_state) for a in trail] == [
        ("ack", "open", "acknowledged"), ("resolve", "acknowledged", "resolved"),
    ]
    assert await worklists.exception_lines(uow, T0) == []


async def test_the_incident_list_pins_critical_ones_and_names_the_claim(uow: FakeUnitOfWork) -> None:
    first = await open_one(uow, "logistics_conflict", severity="critical")
    await worklists.ack_exception(uow, await worklists.load_exception(uow, str(first)), by="sup1", via="wecom", at=T0)
    assert await worklists.exception_lines(uow, T0) == [
        f"🔴 #{first} 物流冲突 OB00000001（已认领）：在「拣货中」已超过 60 分钟，请尽快处理。 · 刚刚",
    ]


async def test_an_unknown_incident_number_is_not_found(uow: FakeUnitOfWork) -> None:
    with pytest.raises(NotFound):
        await worklists.load_exception(uow, "99")


async def test_a_held_customer_is_released_once(uow: FakeUnitOfWork) -> None:
    await uow.customers.add_missing([Customer("C-4S-01", "浦东4S店")], T0)
    await uow.customers.hold({"C-4S-01": "物流冲突：订单 OB00000001"}, T0)
    assert await worklists.held_customers(uow) == ["客户 浦东4S店（C-4S-01）结算冻结：物流冲突：订单 OB00000001"]

    released = await worklists.release_hold(uow, "c-4s-01", by="sup1", via="wecom", at=T0)
    assert released.hold_reason == "物流冲突：订单 OB00000001"
    assert uow.customers.rows["C-4S-01"].settlement_hold is False
    [audit] = [e.change() for e in uow.pop_events() if isinstance(e, Audited)]
    assert (audit.entity_id, audit.action, audit.to_state) == ("C-4S-01", "release", "released")

    with pytest.raises(GuardRefused, match="没有冻结"):
        await worklists.release_hold(uow, "C-4S-01", by="sup1", via="wecom", at=T0)
    with pytest.raises(NotFound):
        await worklists.release_hold(uow, "C-NOBODY", by="sup1", via="wecom", at=T0)


async def test_unclaimed_incidents_reach_the_managers_once(bus: MessageBus, uow: FakeUnitOfWork, clock: Clock) -> None:
    uow.users.rows["mgr1"] = User("mgr1", "运营经理", frozenset({"manager"}))
    await open_one(uow, severity="critical")
    assert await bus.handle(c.EscalateIncidents(30)) == 0  # not 30 minutes old yet
    clock.advance(minutes=31)
    assert await bus.handle(c.EscalateIncidents(30)) == 1
    assert await bus.handle(c.EscalateIncidents(30)) == 0  # each once
    [digest] = uow.pushed("mgr1")
    assert "1 条异常超过 30 分钟无人确认" in digest and "严重" in digest
