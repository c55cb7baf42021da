"""Labels through the outbox to the store's printer, on SQLite and PostgreSQL: a TSPL or ZPL job at the fake raw
printer, a Cainiao waybill at the fake print component, a PDF in a folder; a printer that is off prints once it is
back; a print given up is a card to that store's warehouse staff only; a store with no printer is told once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from domain.labels import EncryptedPrint, Label, Party
from domain.outbox_systems import PrintLabel
from domain.users import User
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from integrations.delivery.dispatcher import OutboxDispatcher
from integrations.fakes.print_component import FakePrintComponent
from integrations.fakes.printer import FakeRawPrinter
from integrations.printing.cainiao import CainiaoPrintComponent
from integrations.printing.dead import PrintTrouble
from integrations.printing.sender import PrintSender
from integrations.printing.waiting import revive_unconfigured
from tests.integration.helpers import rows

PRINT_DATA = json.dumps({"encryptedData": "AES:abc123==", "signature": "MD:xyz", "ver": "waybill_print_secret_version_1",
                         "templateURL": "http://cloudprint.cainiao.com/template/standard/101/123"})


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def label(order_no: str = "SO1001", waybill: str = "YT5550001", receiver: str = "李四") -> Label:
    return Label(order_no, waybill, "YTO", "圆通速递", Party("城东店", "02155550000", "上海市徐汇区漕溪北路1号"),
                 Party(receiver, "13812345678", "北京市朝阳区建国路88号SOHO现代城"), "刹车片×2", "010-A1")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def tspl() -> AsyncIterator[FakeRawPrinter]:
    async with FakeRawPrinter("tspl") as printer:
        yield printer


@pytest.fixture
async def zpl() -> AsyncIterator[FakeRawPrinter]:
    async with FakeRawPrinter("zpl") as printer:
        yield printer


@pytest.fixture
async def component() -> AsyncIterator[FakePrintComponent]:
    async with FakePrintComponent() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def staff(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        for user in (User("wh-sh1", "仓管一", frozenset({"warehouse"}), store="SH01"),
                     User("wh-sh2", "仓管二", frozenset({"warehouse"}), store="SH01"),
                     User("wh-bj", "仓管北", frozenset({"warehouse"}), store="BJ01"),
                     User("wh-gz", "仓管广", frozenset({"warehouse"}), store="GZ01"),
                     User("mgr", "经理", frozenset({"manager"}))):
            await uow.users.upsert(user, datetime.now(UTC))
        await uow.commit()


async def queue(db: Database, clock: Clock, *messages: PrintLabel) -> None:
    async with UnitOfWork(db) as uow:
        await uow.send(*messages, at=clock())
        await uow.commit()


def dispatcher(db: Database, sender: PrintSender, clock: Clock) -> OutboxDispatcher:
    trouble = PrintTrouble(db, clock=clock)
    return OutboxDispatcher(db, {"print": sender}, clock=clock, base_backoff_s=1, max_backoff_s=1,
                            on_dead=trouble, breaker_threshold=100)


def sender_for(printers: dict[str, str], db: Database, clock: Clock, **kw: Any) -> PrintSender:
    trouble = PrintTrouble(db, clock=clock)
    return PrintSender(printers, connect_s=1, send_s=kw.pop("send_s", 2), window_s=600, no_printer=trouble.no_printer,
                       clock=clock, **kw)


async def print_rows(db: Database) -> list[dict[str, Any]]:
    return await rows(db, t.outbox, t.outbox.c.channel == "print")


async def cards(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Chat pushes per person: what each of them was sent."""
    found: dict[str, list[dict[str, Any]]] = {}
    for row in await rows(db, t.outbox, t.outbox.c.channel == "chat"):
        found.setdefault(row["recipient"], []).append(row["payload"])
    return found


async def test_each_store_s_label_arrives_once_at_its_own_printer(
    db: Database, clock: Clock, tspl: FakeRawPrinter, zpl: FakeRawPrinter
) -> None:
    sender = sender_for({"SH01": tspl.url, "BJ01": zpl.url}, db, clock)
    await queue(db, clock, PrintLabel("SH01", label("SO1001", "YT5550001", "张三")),
                PrintLabel("BJ01", label("SO1002", "YT5550002", "王五")))
    d = dispatcher(db, sender, clock)
    assert await d.run_once() == 2
    assert await d.run_once() == 0

    [tspl_job], [zpl_job] = tspl.jobs, zpl.jobs
    assert tspl_job.startswith(b"SIZE 100 mm,150 mm\r\n")
    assert b'"128",' in tspl_job and b'"YT5550001"' in tspl_job and "张三".encode("gbk") in tspl_job
    assert "北京市朝阳区建国路88号".encode("gbk") in tspl_job
    assert zpl_job.startswith(b"^XA") and b"^FDYT5550002^FS" in zpl_job and "王五".encode() in zpl_job
    assert [r["status"] for r in await print_rows(db)] == ["delivered", "delivered"]


async def test_a_printer_that_is_off_prints_the_label_once_it_is_back(
    db: Database, clock: Clock, tspl: FakeRawPrinter
) -> None:
    sender = sender_for({"SH01": tspl.url}, db, clock)
    await queue(db, clock, PrintLabel("SH01", label()))
    d = dispatcher(db, sender, clock)
    await tspl.down()
    await d.run_once()
    [row] = await print_rows(db)
    assert (row["status"], row["attempts"]) == ("pending", 1) and "连接失败" in row["last_error"]

    await tspl.up()
    tspl.refuse_next()  # on again, but it drops the first job half-way
    clock.advance(5)
    await d.run_once()
    assert tspl.jobs == []
    [row] = await print_rows(db)
    assert (row["status"], row["attempts"]) == ("pending", 2), row["last_error"]
    clock.advance(5)
    await d.run_once()
    assert len(tspl.jobs) == 1 and b'"YT5550001"' in tspl.jobs[0]
    [row] = await print_rows(db)
    assert (row["status"], row["attempts"]) == ("delivered", 2)
    assert await cards(db) == {}


async def test_a_stalled_printer_is_given_its_send_time_then_tried_again(
    db: Database, clock: Clock, tspl: FakeRawPrinter
) -> None:
    sender = sender_for({"SH01": tspl.url}, db, clock, send_s=0.2)
    await queue(db, clock, PrintLabel("SH01", label()))
    tspl.stall_next()
    d = dispatcher(db, sender, clock)
    await d.run_once()
    [row] = await print_rows(db)
    assert row["status"] == "pending" and "没有收完" in row["last_error"]
    clock.advance(5)
    await d.run_once()
    assert len(tspl.jobs) == 1
    assert [r["status"] for r in await print_rows(db)] == ["delivered"]


async def test_a_print_given_up_is_a_card_to_that_store_s_warehouse_staff_only(
    db: Database, clock: Clock, tspl: FakeRawPrinter, staff: None
) -> None:
    sender = sender_for({"SH01": tspl.url, "BJ01": tspl.url}, db, clock)
    await tspl.down()
    await queue(db, clock, PrintLabel("SH01", label("SO2001", "YT7770001")))
    d = dispatcher(db, sender, clock)
    await d.run_once()
    clock.advance(601)  # past the print window
    await d.run_once()

    [row] = await print_rows(db)
    assert row["status"] == "dead" and "仍未打印" in row["last_error"]
    told = await cards(db)
    assert sorted(told) == ["wh-sh1", "wh-sh2"]  # not BJ01's or GZ01's staff, not the manager
    payload = told["wh-sh1"][0]
    text = json.dumps(payload, ensure_ascii=False)
    assert "SO2001" in text and "YT7770001" in text and "连接失败" in text and "重打 SO2001" in text
    assert "reprint SO2001" in text  # the card's button runs the reprint
    [incident] = await rows(db, t.exceptions, t.exceptions.c.kind == "print_failed")
    assert (incident["store"], incident["order_no"]) == ("SH01", "SO2001")
    assert await PrintTrouble(db, clock=clock).report() == 0  # told once


async def test_a_store_with_no_printer_sets_labels_aside_tells_its_staff_once_and_prints_once_set_up(
    db: Database, clock: Clock, tspl: FakeRawPrinter, staff: None
) -> None:
    await queue(db, clock, PrintLabel("GZ01", label("SO3001", "YT1")), PrintLabel("GZ01", label("SO3002", "YT2")))
    d = dispatcher(db, sender_for({"SH01": tspl.url}, db, clock), clock)
    await d.run_once()
    assert [(r["status"], r["attempts"]) for r in await print_rows(db)] == [("unconfigured", 0)] * 2
    told = await cards(db)
    assert list(told) == ["wh-gz"] and len(told["wh-gz"]) == 1
    assert "未设置打印机" in json.dumps(told["wh-gz"][0], ensure_ascii=False)

    assert await revive_unconfigured(db, ["SH01", "GZ01"], clock(), 24) == (2, 0)
    await dispatcher(db, sender_for({"GZ01": tspl.url}, db, clock), clock).run_once()
    assert len(tspl.jobs) == 2
    assert [r["status"] for r in await print_rows(db)] == ["delivered", "delivered"]


async def test_a_cainiao_waybill_goes_to_the_print_component_in_its_protocol(
    db: Database, clock: Clock, component: FakePrintComponent, http: aiohttp.ClientSession
) -> None:
    component_sender = CainiaoPrintComponent(http, connect_s=1, send_s=2, notify_s=2)
    sender = sender_for({"SH01": component.url + "?printer=打包台1"}, db, clock, cainiao=component_sender)
    await queue(db, clock, PrintLabel("SH01", EncryptedPrint("SO4001", "YT4001", PRINT_DATA)))
    component.fail_print_next("打印机缺纸")
    d = dispatcher(db, sender, clock)
    await d.run_once()
    [row] = await print_rows(db)
    assert row["status"] == "pending" and "打印机缺纸" in row["last_error"] and component.tasks == []

    clock.advance(5)
    await d.run_once()
    [task] = component.tasks
    assert component.refusals == []
    assert (task["cmd"], task["version"], task["task"]["preview"], task["task"]["printer"]) == (
        "print", "1.0", False, "打包台1")
    assert task["task"]["documents"] == [{"documentID": "YT4001", "contents": [json.loads(PRINT_DATA)]}]
    assert [r["status"] for r in await print_rows(db)] == ["delivered"]


async def test_a_refused_print_request_is_retried(
    db: Database, clock: Clock, component: FakePrintComponent, http: aiohttp.ClientSession
) -> None:
    component_sender = CainiaoPrintComponent(http, connect_s=1, send_s=2, notify_s=2)
    sender = sender_for({"SH01": component.url}, db, clock, cainiao=component_sender)
    await queue(db, clock, PrintLabel("SH01", EncryptedPrint("SO4002", "YT4002", PRINT_DATA)))
    component.fail_next("无效的打印机")
    d = dispatcher(db, sender, clock)
    await d.run_once()
    assert "无效的打印机" in (await print_rows(db))[0]["last_error"]
    clock.advance(5)
    await d.run_once()
    assert len(component.tasks) == 1 and (await print_rows(db))[0]["status"] == "delivered"


async def test_a_label_on_the_wrong_kind_of_printer_dies_at_once_saying_why(
    db: Database, clock: Clock, component: FakePrintComponent, tspl: FakeRawPrinter, staff: None,
    http: aiohttp.ClientSession,
) -> None:
    component_sender = CainiaoPrintComponent(http, connect_s=1, send_s=2, notify_s=2)
    sender = sender_for({"SH01": component.url, "BJ01": tspl.url}, db, clock, cainiao=component_sender)
    await queue(db, clock, PrintLabel("SH01", label("SO5001", "YT5001")),
                PrintLabel("BJ01", EncryptedPrint("SO5002", "YT5002", PRINT_DATA)))
    await dispatcher(db, sender, clock).run_once()
    dead = {r["recipient"]: r for r in await print_rows(db)}
    assert dead["SH01"]["status"] == "dead" and "只能打印菜鸟电子面单" in dead["SH01"]["last_error"]
    assert dead["BJ01"]["status"] == "dead" and "只能由菜鸟打印组件" in dead["BJ01"]["last_error"]
    assert component.tasks == [] and tspl.jobs == []
    assert sorted(await cards(db)) == ["wh-bj", "wh-sh1", "wh-sh2"]


async def test_a_pdf_printer_gets_one_file_per_label(db: Database, clock: Clock, tmp_path: Path) -> None:
    folder = tmp_path / "labels"
    sender = sender_for({"SH01": f"pdf://{folder}"}, db, clock)
    await queue(db, clock, PrintLabel("SH01", label("SO6001", "YT6001")),
                PrintLabel("SH01", label("SO6001", "YT6001"), copy=1))
    await dispatcher(db, sender, clock).run_once()
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["SO6001_YT6001_0.pdf", "SO6001_YT6001_1.pdf"]
    assert (folder / files[0]).read_bytes().startswith(b"%PDF-")


async def test_a_silent_or_absent_print_component_is_tried_again(
    db: Database, clock: Clock, component: FakePrintComponent, http: aiohttp.ClientSession
) -> None:
    component_sender = CainiaoPrintComponent(http, connect_s=1, send_s=0.2, notify_s=1)
    url = component.url
    sender = sender_for({"SH01": url}, db, clock, cainiao=component_sender)
    await queue(db, clock, PrintLabel("SH01", EncryptedPrint("SO4003", "YT4003", PRINT_DATA)))
    component.silent_next()
    d = dispatcher(db, sender, clock)
    await d.run_once()
    assert "没有回应打印请求" in (await print_rows(db))[0]["last_error"]

    await component.close()  # the component is not running
    clock.advance(5)
    await d.run_once()
    [row] = await print_rows(db)
    assert (row["status"], row["attempts"]) == ("pending", 2) and "连不上" in row["last_error"]
    assert component.tasks == []


async def test_one_store_s_printer_off_does_not_hold_the_other_stores_labels(
    db: Database, clock: Clock, tspl: FakeRawPrinter, zpl: FakeRawPrinter
) -> None:
    sender = sender_for({"SH01": tspl.url, "BJ01": zpl.url}, db, clock)
    await tspl.down()
    await queue(db, clock, *(PrintLabel("SH01", label(f"SO80{i}", f"YT80{i}")) for i in range(5)))
    d = OutboxDispatcher(db, {"print": sender}, clock=clock, base_backoff_s=1, max_backoff_s=1, breaker_threshold=2)
    await d.run_once()
    await queue(db, clock, PrintLabel("BJ01", label("SO8100", "YT8100")))
    await d.run_once()
    assert len(zpl.jobs) == 1 and d.breakers["print"].closed
