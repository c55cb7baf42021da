"""The consistency score: K3 (through its WebAPI fake) against orderbot's copy, hour after hour; the managers are
warned once per drop below 98.5 %, with the missing bills named, and told when it recovers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from domain import commands as c
from domain.consistency import Window
from domain.users import User
from handlers.bus import MessageBus
from handlers.consistency import count_sources, summary_line
from integrations.channels.k3.client import K3Client
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from integrations.fakes.k3 import FakeK3
from tests.integration.helpers import rows
from tests.integration.k3_support import T0, client, pull, ready


@pytest.fixture
async def fake() -> AsyncIterator[FakeK3]:
    async with FakeK3() as server:
        yield server


async def score_hour(bus: MessageBus, k3: K3Client, start: datetime) -> float:
    window = Window("hour", start.astimezone(UTC), (start + timedelta(hours=1)).astimezone(UTC))
    sources = await count_sources([k3], window)
    result = await bus.handle(c.ScoreConsistency(window, sources, 98.5, 3, alert=True))
    return round(result.score, 1)


async def pushes(db: Database, recipient: str) -> list[str]:
    found = await rows(db, t.outbox, t.outbox.c.recipient == recipient)
    return [str(r["payload"]["text"]) for r in found if "一致性" in str(r["payload"].get("text", ""))]


def bills(fake: FakeK3, hour: datetime, first: int, count: int) -> None:
    for i in range(first, first + count):
        fake.add_bill(f"XSDD{i:06d}", modified=hour + timedelta(minutes=i % 60), created=hour + timedelta(minutes=i % 60))


async def test_a_drop_below_98_5_warns_the_managers_once_and_the_recovery_is_told(
    db: Database, bus: MessageBus, fake: FakeK3, http: httpx.AsyncClient,
) -> None:
    await ready(db, bus, "mgr1", "mgr2")
    async with UnitOfWork(db) as uow:  # not a manager: never told
        await uow.users.upsert(User("sup1", "王主管", frozenset({"supervisor"})), T0)
        await uow.commit()
    k3 = client(fake, http)
    h1, h2, h3, h4 = (T0 + timedelta(hours=i) for i in range(4))
    bills(fake, h1, 0, 100)
    await pull(k3, db, bus)
    assert await score_hour(bus, k3, h1) == 100.0 and await pushes(db, "mgr1") == []

    bills(fake, h2, 100, 96)
    await pull(k3, db, bus)
    bills(fake, h2, 196, 4)  # entered in K3 after the pull, and the pull stopped running
    assert await score_hour(bus, k3, h2) == 96.0
    [warning] = await pushes(db, "mgr1")
    assert await pushes(db, "mgr2") == [warning] and await pushes(db, "sup1") == []
    assert "跨系统一致性预警" in warning and "96.0%" in warning and "低于 98.5%" in warning
    assert "金蝶K3 100 单，订单助手 96 单；订单助手缺 4 单：XSDD000196、XSDD000197、XSDD000198 等 4 单" in warning

    bills(fake, h3, 200, 50)  # still not pulled: the hour stays low, nobody is told again
    assert await score_hour(bus, k3, h3) == 0.0
    assert await score_hour(bus, k3, h3) == 0.0  # the same tick run twice
    assert len(await pushes(db, "mgr1")) == 1

    await pull(k3, db, bus)  # the pull runs again and catches up
    bills(fake, h4, 250, 10)
    await pull(k3, db, bus)
    assert await score_hour(bus, k3, h4) == 100.0
    warning_again, recovered = await pushes(db, "mgr1")
    assert warning_again == warning and "跨系统一致性已恢复" in recovered and "100.0%" in recovered
    assert "（自 03-02 10:00 起低于 98.5%）" in recovered
    async with UnitOfWork(db) as uow:
        line = await summary_line(uow)
    assert line is not None and "最近一小时（12:00–13:00）100.0%" in line


async def test_a_channel_that_cannot_be_counted_is_left_out(fake: FakeK3, http: httpx.AsyncClient) -> None:
    fake.fail_next("http")
    window = Window("hour", T0.astimezone(UTC), (T0 + timedelta(hours=1)).astimezone(UTC))
    assert await count_sources([client(fake, http)], window) == ()

