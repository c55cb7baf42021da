"""Order use cases against the in-memory unit of work: creation, allocation, lifecycle triggers."""

from __future__ import annotations

import pytest

from domain import commands as c
from domain.errors import IllegalTransition
from handlers.bus import MessageBus
from tests.unit.fakes import FakeUnitOfWork
from tests.unit.handlers.conftest import create_cmd, stock


async def test_creating_an_order_twice_yields_one_order_and_one_reservation(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    order, created = await bus.handle(create_cmd("DY1"))
    again, created_again = await bus.handle(create_cmd("DY1"))

    assert (created, created_again) == (True, False)
    assert again.order_no == order.order_no and len(uow.orders.rows) == 1
    assert (order.state, order.store) == ("split", "SH01")
    assert uow.inventory.rows["SH01", "BP-001"].reserved == 2
    assert uow.customers.rows["C-4S-01"].name == "浦东4S店"
    assert [(a["action"], a["to_state"]) for a in uow.audit_rows if a["entity"] == "order"] == [
        ("create", "paid"), ("allocate", "split"),
    ]
    assert uow.commits == 2 + 1  # the stock count, then each creation


async def test_an_order_no_store_can_fill_stays_paid_with_an_out_of_stock_incident(
    bus: MessageBus, uow: FakeUnitOfWork
) -> None:
    await stock(bus, "SH01", "BP-001", 1)
    order, _ = await bus.handle(create_cmd("DY2", qty=5))

    assert order.state == "paid"
    [incident] = uow.incidents.rows.values()
    assert (incident.kind, incident.order_no, incident.severity) == ("out_of_stock", order.order_no, "critical")
    assert any("缺货" in text for text in uow.pushed("sup1"))
    assert uow.inventory.rows["SH01", "BP-001"].reserved == 0


async def test_a_legal_trigger_moves_the_order_and_an_illegal_one_is_refused_and_audited(
    bus: MessageBus, uow: FakeUnitOfWork
) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(create_cmd("DY3"))

    picked = await bus.handle(c.FireOrderTrigger(order.order_no, "pick", by="wh1", via="wecom"))
    assert picked.state == "picking"

    with pytest.raises(IllegalTransition):
        await bus.handle(c.FireOrderTrigger(order.order_no, "ship", by="wh1", via="wecom", waybill="SF1"))
    refused = [a for a in uow.audit_rows if a["outcome"] == "refused"]
    assert [(a["entity_id"], a["action"], a["detail"]) for a in refused] == [
        (order.order_no, "ship", {"code": "illegal_transition"}),
    ]
    assert uow.orders.rows[order.order_no].state == "picking"
