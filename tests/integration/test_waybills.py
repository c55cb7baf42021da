"""E-waybills through the outbox to the fake Cainiao LINK and the fake Kuaidi100, on SQLite and PostgreSQL: 打包 →
the number on the order (audited) → a PrintLabel row and word to the packer; a lost answer retried takes no second
number; a final refusal is the store's task card; an address change discards the old waybill and prints a new one;
a store without a provider packs as before."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from domain import commands as c
from domain.labels import EncryptedPrint, Label, Party
from domain.outbox_systems import WaybillRequest, label_from_data
from domain.stores import SaveStore
from domain.users import User
from domain.waybills import CAINIAO, KUAIDI100, IssuedWaybill, RecordWaybill
from handlers.address_check import RequestAddressChange
from handlers.bootstrap import build_bus
from handlers.bus import Deps, MessageBus
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from integrations.delivery.dispatcher import OutboxDispatcher
from integrations.fakes.cainiao import FakeCainiao
from integrations.fakes.kuaidi100_label import FakeKuaidi100Label
from integrations.waybills.base import WaybillProvider
from integrations.waybills.cainiao import CainiaoWaybills
from integrations.waybills.dead import WaybillDeadRows
from integrations.waybills.kuaidi100 import Kuaidi100Waybills
from integrations.waybills.sender import WaybillSender
from tests.integration.helpers import create_cmd, drive, rows, stock

SENDER = Party("浦东店", "02150001234", "上海市浦东新区川沙路100号")


def bus_with(db: Database, provider: str) -> MessageBus:
    return build_bus(db, Deps(waybill_provider=lambda store: provider if store == "SH01" else ""))


def dispatcher_of(db: Database, bus: MessageBus, providers: dict[str, WaybillProvider]) -> OutboxDispatcher:
    async def record(request: WaybillRequest, issued: IssuedWaybill) -> None:
        await bus.handle(RecordWaybill(request.order_no, request, issued, via=issued.provider))

    sender = WaybillSender(providers, bus.deps.waybill_provider, record)
    return OutboxDispatcher(db, {"waybill": sender}, base_backoff_s=0, max_backoff_s=0, retry_window_s=86400,
                            on_dead=WaybillDeadRows(db))


@pytest.fixture
async def cainiao() -> AsyncIterator[FakeCainiao]:
    async with FakeCainiao(provider_id="ob-link", secret="link-secret+/=") as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=0.3) as client:
        yield client


def cainiao_provider(http: httpx.AsyncClient, fake: FakeCainiao) -> CainiaoWaybills:
    return CainiaoWaybills(http, api_base=fake.api_base, provider_id="ob-link", secret="link-secret+/=", cp_code="YTO")


async def bench(db: Database, bus: MessageBus) -> None:
    await bus.handle(SaveStore("SH01", SENDER.name, SENDER.address, SENDER.phone, by="cli", via="cli"))
    async with UnitOfWork(db) as uow:
        await uow.users.upsert(User("wh1", "王强", frozenset({"warehouse"}), "SH01"), bus.deps.now)
        await uow.commit()


async def packed(bus: MessageBus, external_id: str = "DY1001") -> str:
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(create_cmd(external_id))
    await drive(bus, order.order_no, "pick", "check", "pack")
    return str(order.order_no)


async def outbox(db: Database, channel: str) -> list[dict[str, Any]]:
    return await rows(db, t.outbox, t.outbox.c.channel == channel)


async def order_row(db: Database, no: str) -> dict[str, Any]:
    [row] = await rows(db, t.orders, t.orders.c.order_no == no)
    return row


async def drain(d: OutboxDispatcher, until: Callable[[], bool] = lambda: False) -> None:
    for _ in range(10):
        if not await d.run_once() or until():
            return


async def test_pack_takes_a_cainiao_waybill_stores_it_and_writes_the_label_row(
    db: Database, cainiao: FakeCainiao, http: httpx.AsyncClient
) -> None:
    bus = bus_with(db, CAINIAO)
    await bench(db, bus)
    no = await packed(bus)
    [request] = await outbox(db, "waybill")
    assert (request["recipient"], request["kind"], request["dedup_key"]) == ("SH01", "get", f"waybill:{no}-1")

    await drain(dispatcher_of(db, bus, {CAINIAO: cainiao_provider(http, cainiao)}))

    assert cainiao.refusals == []  # the data_digest was accepted
    [waybill] = cainiao.waybills()
    [sent] = cainiao.requests
    trade = sent.content["tradeOrderInfoDtos"][0]
    assert (sent.msg_type, sent.content["cpCode"], trade["objectId"]) == ("TMS_WAYBILL_GET", "YTO", f"{no}-1")
    assert sent.content["sender"]["address"] == {"province": "上海市", "city": "上海市", "district": "浦东新区",
                                                 "detail": "川沙路100号"}
    assert (trade["recipient"]["name"], trade["recipient"]["mobile"]) == ("浦东4S店", "13800000000")
    assert (await order_row(db, no))["waybill"] == waybill
    [print_row] = await outbox(db, "print")
    label = label_from_data(print_row["payload"]["label"])
    assert isinstance(label, EncryptedPrint) and (label.order_no, label.waybill) == (no, waybill)
    assert "encryptedData" in label.print_data
    assert (print_row["recipient"], print_row["dedup_key"]) == ("SH01", f"print:{no}:{waybill}:0")
    [told] = [r for r in await outbox(db, "chat") if r["dedup_key"] == f"waybill-told:{no}-1"]
    assert told["recipient"] == "wh1" and f"圆通速递 {waybill}（菜鸟）" in told["payload"]["text"]
    [line] = await rows(db, t.audit_log, t.audit_log.c.action == "issue_waybill")
    assert (line["actor"], line["via"], line["detail"]["waybill"], line["detail"]["provider"]) == (
        "system", CAINIAO, waybill, CAINIAO)

    await drive(bus, no, "ship")  # no typed waybill: the e-waybill is the order's
    assert (await order_row(db, no))["state"] == "shipped"


async def test_a_lost_answer_and_provider_trouble_still_take_one_waybill(
    db: Database, cainiao: FakeCainiao, http: httpx.AsyncClient
) -> None:
    bus = bus_with(db, CAINIAO)
    await bench(db, bus)
    no = await packed(bus)
    cainiao.lose_next(1.0)  # Cainiao takes the number, the answer comes after the client's 0.3 s
    d = dispatcher_of(db, bus, {CAINIAO: cainiao_provider(http, cainiao)})
    await d.run_once()
    cainiao.fail_next("S01")  # 系统错误: retried
    await d.run_once()
    cainiao.fail_next(status=503)
    await d.run_once()
    await drain(d)

    [request] = await outbox(db, "waybill")
    assert (request["status"], request["attempts"]) == ("delivered", 3)
    assert len(cainiao.issued) == 1 and len(cainiao.requests) == 2  # the lost one and the one that came back
    assert (await order_row(db, no))["waybill"] == cainiao.waybills()[0]
    assert len(await outbox(db, "print")) == 1


async def test_a_final_refusal_is_a_task_card_for_the_stores_warehouse_staff(
    db: Database, cainiao: FakeCainiao, http: httpx.AsyncClient
) -> None:
    bus = bus_with(db, CAINIAO)
    await bench(db, bus)
    no = await packed(bus)
    cainiao.fail_next("ADDRESS_ILLEGAL")
    await drain(dispatcher_of(db, bus, {CAINIAO: cainiao_provider(http, cainiao)}))

    [request] = await outbox(db, "waybill")
    assert request["status"] == "dead" and "ADDRESS_ILLEGAL" in request["last_error"]
    [card] = [r for r in await outbox(db, "chat") if r["dedup_key"].startswith("waybill-dead:")]
    assert card["recipient"] == "wh1" and card["urgent"]
    assert "收件人地址不合法" in card["payload"]["description"]  # the provider's own words
    assert card["payload"]["buttons"][0]["key"] == f"reprint {no}"
    [incident] = await rows(db, t.exceptions, t.exceptions.c.kind == "waybill_failed")
    assert incident["order_no"] == no and incident["store"] == "SH01"
    assert (await order_row(db, no))["waybill"] is None
    assert await outbox(db, "print") == []


async def test_address_change_discards_the_old_waybill_and_prints_a_new_one(
    db: Database, cainiao: FakeCainiao, http: httpx.AsyncClient
) -> None:
    bus = bus_with(db, CAINIAO)
    await bench(db, bus)
    no = await packed(bus)
    d = dispatcher_of(db, bus, {CAINIAO: cainiao_provider(http, cainiao)})
    await drain(d)
    [old] = cainiao.waybills()

    await bus.handle(RequestAddressChange(no, "上海市徐汇区漕溪北路88号", by="cs1", via="wecom"))
    [_, relabel] = await outbox(db, "waybill")
    assert (relabel["kind"], relabel["payload"]["discard"]) == ("relabel", old)
    await drain(d)

    assert cainiao.discarded == [old]
    new = cainiao.waybills()[-1]
    assert new != old
    row = await order_row(db, no)
    assert (row["waybill"], row["address_change_pending"]) == (new, True)
    assert [r["dedup_key"] for r in await outbox(db, "print")] == [f"print:{no}:{old}:0", f"print:{no}:{new}:0"]
    [card] = [r for r in await outbox(db, "chat") if r["dedup_key"].startswith(f"relabel:{no}")]
    assert "已向菜鸟作废旧运单并取新电子面单" in card["payload"]["description"]

    await bus.handle(c.ConfirmRelabel(no, "", by="wh1", via="wecom"))  # no typed number: the new e-waybill
    await drive(bus, no, "ship")
    row = await order_row(db, no)
    assert (row["state"], row["waybill"], row["address_change_pending"]) == ("shipped", new, False)
    [draft] = await rows(db, t.waybill_drafts)
    assert (draft["status"], draft["voided_waybill"], draft["waybill"]) == ("used", old, new)


async def test_kuaidi100_waybill_is_printed_as_orderbots_own_label(db: Database, http: httpx.AsyncClient) -> None:
    bus = bus_with(db, KUAIDI100)
    await bench(db, bus)
    async with FakeKuaidi100Label(key="kd-key", secret="kd-secret") as fake:
        provider = Kuaidi100Waybills(http, api_base=fake.base_url, key="kd-key", secret="kd-secret",
                                     partner_id="C123", partner_key="pk", kuaidicom="yuantong")
        no = await packed(bus)
        fake.fail_next("500")  # 服务器错误: retried with the same orderId
        await drain(dispatcher_of(db, bus, {KUAIDI100: provider}))
        assert fake.refusals == []
        [order] = fake.orders
        assert (order["orderId"], order["kuaidicom"], order["recMan"]["printAddr"]) == (
            f"{no}-1", "yuantong", "上海市浦东新区张杨路500号")
        [number] = fake.numbers.values()

    [print_row] = await outbox(db, "print")
    label = label_from_data(print_row["payload"]["label"])
    assert label == Label(no, number, "yuantong", "圆通速递", SENDER, Party("浦东4S店", "13800000000",
                          "上海市浦东新区张杨路500号"), "刹车片×2", "沪-浦东 021", label.printed_at)
    assert (await order_row(db, no))["waybill"] == number


async def test_a_store_without_a_provider_packs_as_before(db: Database) -> None:
    bus = bus_with(db, "")
    await bench(db, bus)
    no = await packed(bus)
    assert await outbox(db, "waybill") == []
    with pytest.raises(Exception, match="还没有运单号"):
        await drive(bus, no, "ship")
    await drive(bus, no, "ship", waybill="SF1234567890")
    assert (await order_row(db, no))["waybill"] == "SF1234567890"


async def test_an_unregistered_store_types_its_waybill(db: Database) -> None:
    bus = bus_with(db, CAINIAO)
    await packed(bus)  # SH01 has a provider but is not in the register: no sender address for the waybill
    assert await outbox(db, "waybill") == []


async def test_kuaidi100_address_change_cancels_the_old_waybill(db: Database, http: httpx.AsyncClient) -> None:
    bus = bus_with(db, KUAIDI100)
    await bench(db, bus)
    async with FakeKuaidi100Label() as fake:
        provider = Kuaidi100Waybills(http, api_base=fake.base_url, key=fake.key, secret=fake.secret,
                                     partner_id="C123", partner_key="pk", kuaidicom="yuantong")
        d = dispatcher_of(db, bus, {KUAIDI100: provider})
        no = await packed(bus)
        await drain(d)
        old = (await order_row(db, no))["waybill"]
        await bus.handle(RequestAddressChange(no, "上海市徐汇区漕溪北路88号", by="cs1", via="wecom"))
        await drain(d)
        assert fake.cancelled == [old]
        assert [o["recMan"]["printAddr"] for o in fake.orders] == ["上海市浦东新区张杨路500号", "上海市徐汇区漕溪北路88号"]
    new = (await order_row(db, no))["waybill"]
    assert new not in (None, old)


async def test_rows_of_a_store_whose_provider_went_away_are_set_aside(db: Database) -> None:
    bus = bus_with(db, CAINIAO)
    await bench(db, bus)
    await packed(bus)
    await drain(dispatcher_of(db, bus, {}))  # Cainiao's settings were removed before the row was sent
    [request] = await outbox(db, "waybill")
    assert (request["status"], request["attempts"]) == ("unconfigured", 0)
