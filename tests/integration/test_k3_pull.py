"""K3 Cloud sales orders pulled into orderbot through the WebAPI's wire format, with either login."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from handlers.bus import MessageBus
from integrations.channels.k3.client import K3Error
from integrations.db import tables as t
from integrations.db.channel_cursors import ChannelCursors
from integrations.db.engine import Database
from integrations.fakes.k3 import FakeK3
from tests.integration.helpers import rows
from tests.integration.k3_support import T0, client, k3_orders, pull, ready


@pytest.fixture
async def fake() -> FakeK3:
    async with FakeK3() as server:
        yield server  # type: ignore[misc]


async def test_signed_headers_pull_orders_with_their_lines(db: Database, bus: MessageBus, fake: FakeK3,
                                                           http: httpx.AsyncClient) -> None:
    await ready(db, bus)
    fake.add_bill("XSDD000001", modified=T0, lines=(("BP-001", 2, 199.0, "刹车片"), ("OF-002", 1, 35.5, "机油滤芯")))
    fake.add_bill("XSDD000002", modified=T0 + timedelta(minutes=1), customer=("CUST-0002", "浦东好修汽修"))
    fake.add_bill("XSDD000003", modified=T0 + timedelta(minutes=2), document_status="B")  # not audited yet
    report = await pull(client(fake, http), db, bus)
    assert fake.refused == [] and fake.logins == 0  # the signed headers passed the fake's check; no login call
    orders = await k3_orders(db)
    assert sorted(orders) == ["XSDD000001", "XSDD000002"] and report.created == 2
    assert [(x["sku"], x["qty"], x["unit_price_fen"]) for x in orders["XSDD000001"]] == [  # type: ignore[attr-defined, index]
        ("BP-001", 2, 19_900), ("OF-002", 1, 3_550)]
    [first] = await rows(db, t.orders, t.orders.c.external_id == "XSDD000001")
    assert first["customer_name"] == "上海驰骋汽修厂" and first["state"] != "pending_payment"  # paid on account
    assert await ChannelCursors(db).get("k3") == "2026-03-02T09:01:00.000"


async def test_a_wrong_secret_is_refused_and_nothing_is_stored(db: Database, bus: MessageBus, fake: FakeK3,
                                                               http: httpx.AsyncClient) -> None:
    fake.add_bill("XSDD000001", modified=T0)
    report = await pull(client(fake, http, app_secret="not-the-secret"), db, bus)
    assert "授权密钥校验失败" in report.failed and fake.refused == ["X-Kd-Signature"]
    assert await k3_orders(db) == {} and await ChannelCursors(db).get("k3") is None


async def test_session_login_and_one_relogin_when_the_session_is_lost(db: Database, bus: MessageBus, fake: FakeK3,
                                                                       http: httpx.AsyncClient) -> None:
    await ready(db, bus)
    k3 = client(fake, http, "session")
    fake.add_bill("XSDD000001", modified=T0)
    await pull(k3, db, bus)
    assert fake.logins == 1
    fake.lose_sessions()  # K3 answers MsgCode 1 "会话信息已丢失，请重新登录" to the old cookie
    fake.add_bill("XSDD000002", modified=T0 + timedelta(minutes=5))
    report = await pull(k3, db, bus)
    assert fake.logins == 2 and report.failed == "" and sorted(await k3_orders(db)) == ["XSDD000001", "XSDD000002"]


async def test_a_session_lost_twice_in_a_row_logs_in_once_and_stops(fake: FakeK3, http: httpx.AsyncClient) -> None:
    k3 = client(fake, http, "session")
    fake.fail_next("session_lost", times=2)
    with pytest.raises(K3Error, match="会话信息已丢失"):
        await k3.order_ids(T0, T0 + timedelta(hours=1))
    assert fake.logins == 2  # the first login, then one re-login only


async def test_signed_mode_repeats_a_call_once_after_a_lost_session(fake: FakeK3, http: httpx.AsyncClient) -> None:
    fake.add_bill("XSDD000001", modified=T0)
    fake.fail_next("session_lost")
    assert await client(fake, http).order_ids(T0, T0 + timedelta(hours=1)) == {"XSDD000001"}
    assert fake.logins == 0 and len(fake.queries) == 1  # the refused call never reached the query


async def test_pages_never_cut_a_bill_and_same_instant_bills_are_all_read(db: Database, bus: MessageBus,
                                                                          fake: FakeK3, http: httpx.AsyncClient) -> None:
    await ready(db, bus)
    three = (("BP-001", 1, 10.0, "刹车片"), ("OF-002", 2, 20.0, "机油滤芯"), ("BP-001", 3, 30.0, "刹车片"))
    for i in range(20):  # ten bills audited in the same instant, ten a minute apart
        fake.add_bill(f"XSDD{i:06d}", modified=T0 + timedelta(minutes=max(0, i - 9)), lines=three)
    fake.add_bill("XSDD-BIG", modified=T0 + timedelta(hours=1), lines=three * 5)  # 15 lines, longer than a page
    report = await pull(client(fake, http), db, bus, page_size=10)
    orders = await k3_orders(db)
    assert len(orders) == 21 and all(len(lines) == 3 for b, lines in orders.items() if b != "XSDD-BIG")
    assert len(orders["XSDD-BIG"]) == 15 and report.pages >= 7 and report.parked == []


async def test_catch_up_after_a_gap_without_duplicates(db: Database, bus: MessageBus, fake: FakeK3,
                                                       http: httpx.AsyncClient) -> None:
    await ready(db, bus)
    k3 = client(fake, http)
    for i in range(5):
        fake.add_bill(f"XSDD{i:06d}", modified=T0 + timedelta(minutes=i))
    await pull(k3, db, bus)
    for i in range(5, 30):  # a day of downtime: new bills, and an old one modified again
        fake.add_bill(f"XSDD{i:06d}", modified=T0 + timedelta(hours=i))
    fake.add_bill("XSDD000002", modified=T0 + timedelta(hours=30))
    report = await pull(k3, db, bus, page_size=7)
    assert report.created == 25 and report.failed == ""
    assert sorted(await k3_orders(db)) == [f"XSDD{i:06d}" for i in range(30)]
    again = await pull(k3, db, bus)
    assert again.created == 0 and len(await rows(db, t.orders, t.orders.c.channel == "k3")) >= 30


@pytest.mark.parametrize("trouble", ["error", "http", "response_error", "timeout"])
async def test_an_error_answer_stops_the_run_and_the_next_run_catches_up(
    db: Database, bus: MessageBus, fake: FakeK3, http: httpx.AsyncClient, trouble: str,
) -> None:
    await ready(db, bus)
    k3 = client(fake, http)
    fake.add_bill("XSDD000001", modified=T0)
    if trouble == "timeout":
        fake.stall_next(2.0)  # the test client gives up after 0.3 s
    else:
        fake.fail_next(trouble)
    report = await pull(k3, db, bus)
    assert report.failed and await k3_orders(db) == {} and await ChannelCursors(db).get("k3") is None
    assert (await pull(k3, db, bus)).created == 1


async def test_a_bad_bill_is_parked_and_the_good_ones_around_it_are_stored(db: Database, bus: MessageBus,
                                                                          fake: FakeK3, http: httpx.AsyncClient) -> None:
    await ready(db, bus)
    k3 = client(fake, http)
    fake.add_bill("XSDD000001", modified=T0)
    fake.add_bill("XSDD000002", modified=T0 + timedelta(minutes=1), lines=(("BP-001", 1.5, 199.0, "刹车片"),))
    fake.add_bill("XSDD000003", modified=T0 + timedelta(minutes=2), address="")
    fake.add_bill("XSDD000004", modified=T0 + timedelta(minutes=3))
    report = await pull(k3, db, bus)
    assert sorted(await k3_orders(db)) == ["XSDD000001", "XSDD000004"]
    assert [b for b, _ in report.parked] == ["XSDD000002", "XSDD000003"]
    [incident] = await rows(db, t.exceptions, t.exceptions.c.kind == "channel_order")
    assert "XSDD000002（字段 FQty" in incident["message"] and "FReceiveAddress" in incident["message"]
    assert await ChannelCursors(db).get("k3") == "2026-03-02T09:03:00.000"  # past the parked bills
    await pull(k3, db, bus)  # the bills at the cursor's instant are read again: not reported twice
    assert len(await rows(db, t.exceptions, t.exceptions.c.kind == "channel_order")) == 1
