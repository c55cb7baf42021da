"""Labels through the whole app, on SQLite and PostgreSQL: PRINTING__PRINTERS names each store's printer; a label
for a store with one reaches the fake printer, a label for a store without one is set aside, counted on /metrics,
and that store's warehouse staff hear once that no printer is set up; set up later, it prints at start-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import create_app
from bot.keys import DB
from config.settings import PrintingSettings, Settings
from domain.labels import Label, Party
from domain.outbox_systems import PrintLabel
from integrations.db import tables as t
from integrations.db.uow import UnitOfWork
from integrations.fakes.printer import FakeRawPrinter
from integrations.fakes.wecom import FakeWeCom
from tests.e2e.conftest import Chat


@pytest.fixture
async def printer() -> AsyncIterator[FakeRawPrinter]:
    async with FakeRawPrinter("tspl") as fake:
        yield fake


def label(order_no: str, waybill: str) -> Label:
    return Label(order_no, waybill, "ZTO", "中通快递", Party("城东店", "02155550000", "上海市徐汇区漕溪北路1号"),
                 Party("赵六", "13900001111", "杭州市西湖区文三路100号"), "火花塞×4", "571-B2")


def with_printers(settings: Settings, printers: dict[str, str]) -> Settings:
    return settings.model_copy(update={"printing": PrintingSettings(printers=printers)})


async def print_rows(chat: Chat) -> dict[str, Any]:
    async with chat.app[DB].engine.connect() as conn:
        stmt = select(t.outbox).where(t.outbox.c.channel == "print")
        return {r.recipient: r._mapping for r in await conn.execute(stmt)}


async def test_labels_print_where_a_printer_is_set_up_and_wait_visibly_where_not(
    aiohttp_client: Any, e2e_settings: Settings, fake_wecom: FakeWeCom, printer: FakeRawPrinter
) -> None:
    settings = with_printers(e2e_settings, {"SH01": printer.url})
    chat = Chat(await aiohttp_client(create_app(settings, deliver=False)), fake_wecom, settings)
    await chat.add_user("wh1", "王强", "warehouse", store="SH01")
    await chat.add_user("wh2", "陈静", "warehouse", store="GZ01")
    async with UnitOfWork(chat.app[DB]) as uow:
        await uow.send(PrintLabel("SH01", label("SO7001", "ZT7001")), PrintLabel("GZ01", label("SO7002", "ZT7002")),
                       PrintLabel("GZ01", label("SO7003", "ZT7003")), at=datetime.now(UTC))
        await uow.commit()
    await chat.settle()

    assert len(printer.jobs) == 1 and b'"ZT7001"' in printer.jobs[0]
    rows = await print_rows(chat)
    assert rows["SH01"]["status"] == "delivered" and rows["GZ01"]["status"] == "unconfigured"
    metrics = await (await chat.client.get("/metrics")).text()
    assert 'orderbot_outbox_rows{channel="print",status="unconfigured"} 2.0' in metrics
    told = chat.received("wh2")
    assert len(told) == 1 and "GZ01" in told[0] and "未设置打印机" in told[0]
    assert chat.received("wh1") == []

    settings = with_printers(e2e_settings, {"SH01": printer.url, "GZ01": printer.url})  # a restart, set up
    later = Chat(await aiohttp_client(create_app(settings, deliver=False)), fake_wecom, settings)
    await later.settle()
    assert len(printer.jobs) == 3
    metrics = await (await later.client.get("/metrics")).text()
    assert 'orderbot_outbox_rows{channel="print",status="unconfigured"} 0.0' in metrics
