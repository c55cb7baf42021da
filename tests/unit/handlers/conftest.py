"""A bus over the in-memory unit of work: every handler and reaction, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from domain import commands as c
from domain.users import User
from handlers.bootstrap import compose
from handlers.bus import Deps, MessageBus
from integrations.db.uow import UnitOfWork
from tests.unit.fakes import FakeUnitOfWork

T0 = datetime(2026, 1, 20, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
STAFF = (
    User("sup1", "王主管", frozenset({"supervisor"})),
    User("wh1", "仓管一", frozenset({"warehouse"}), store="SH01"),
    User("cg1", "采购小陈", frozenset({"purchasing"})),
)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork(STAFF)


@pytest.fixture
def bus(uow: FakeUnitOfWork, clock: Clock) -> MessageBus:
    return compose(lambda: cast(UnitOfWork, uow), Deps(clock=clock))


def create_cmd(external_id: str = "DY1001", *, store: str | None = "SH01", qty: int = 2, paid: bool = True,
               sku: str = "BP-001", channel: str = "douyin") -> c.CreateOrder:
    return c.CreateOrder(
        channel=channel, external_id=external_id, customer_id="C-4S-01", customer_name="浦东4S店",
        customer_phone="13800000000", address="上海市浦东新区张杨路500号", store=store, paid=paid,
        lines=(c.LineInput(sku, qty, 19_900, "刹车片"),), by="api", via="api",
    )


async def stock(bus: MessageBus, store: str, sku: str, on_hand: int) -> None:
    await bus.handle(c.SetStock(store, sku, on_hand, by="api", via="api"))
