"""Customer texts through the outbox to the fake Aliyun SMS, on SQLite and PostgreSQL: shipment, address change and
refund texts with their templates, opt-out, quiet hours, provider trouble, a dead text as customer service's task,
unconfigured rows set aside and drained, and no full phone number or secret in any log line."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.logsafe import QUIET_LOGGERS
from domain import commands as c
from domain.clock import CST
from domain.commands import SetSmsOptOut
from domain.outbox import SMS_ADDRESS_CHANGED, SMS_REFUND, SMS_SHIPPED, CustomerText
from domain.quiet_hours import QuietHours
from domain.users import User
from handlers.address_check import RequestAddressChange
from handlers.bus import Deps, MessageBus
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from integrations.delivery.dispatcher import OutboxDispatcher, Sender
from integrations.fakes.aliyun_sms import FakeAliyunSms, SentSms
from integrations.sms.aliyun import AliyunSmsClient, AliyunSmsSender, UnconfiguredSms
from integrations.sms.dead import SmsDeadRows
from integrations.sms.outbox import revive_unconfigured
from integrations.sms.templates import SmsTemplates
from tests.integration.helpers import create_cmd, drive, rows, stock

KEY_ID, SECRET, SIGN = "LTAI-test-key", "s3cr3t-Aliyun-KEY-value", "汽配测试"
SHIP, ADDR, REFUND = "SMS_100001", "SMS_100002", "SMS_100003"
PHONE = "13800000000"
TEMPLATES = SmsTemplates({SMS_SHIPPED: SHIP, SMS_ADDRESS_CHANGED: ADDR, SMS_REFUND: REFUND})


class Clock:
    """A Beijing-time day the test moves by hand; it starts at the next 10:00, after every row is due and less
    than 24 h after the rows the bus writes at the real time (whatever the hour the suite runs)."""

    def __init__(self) -> None:
        now = datetime.now(CST)
        ten = now.replace(hour=10, minute=0, second=0, microsecond=0)
        self.now = (ten if ten > now else ten + timedelta(days=1)).astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def at(self, hhmm: str) -> None:
        hours, minutes = map(int, hhmm.split(":"))
        self.now = self.now.astimezone(CST).replace(hour=hours, minute=minutes).astimezone(UTC)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeAliyunSms]:
    async with FakeAliyunSms(access_key_id=KEY_ID, access_key_secret=SECRET, sign_name=SIGN) as server:
        server.clock = clock
        server.register(SHIP, "您的订单${order_no}已由${courier}发出，运单号${waybill}，请留意查收。")
        server.register(ADDR, "您的订单${order_no}收货地址已改为${address}。")
        server.register(REFUND, "您的订单${order_no}退款${amount}元已同意，将原路退回。")
        yield server


@pytest.fixture
async def sender(db: Database, fake: FakeAliyunSms, clock: Clock) -> AsyncIterator[AliyunSmsSender]:
    async with httpx.AsyncClient(timeout=0.3) as http:
        client = AliyunSmsClient(http, api_base=fake.base_url, access_key_id=KEY_ID, access_key_secret=SECRET,
                                 sign_name=SIGN, clock=clock)
        yield AliyunSmsSender(client, db, TEMPLATES, quiet=QuietHours(), clock=clock)


def dispatcher(db: Database, sender: Sender, clock: Clock, **kw: object) -> OutboxDispatcher:
    return OutboxDispatcher(db, {"sms": sender}, clock=clock, base_backoff_s=1, max_backoff_s=1,
                            retry_window_s=5 * 86400, **kw)  # type: ignore[arg-type]


async def shipped(bus: MessageBus, *, phone: str = PHONE, external_id: str = "DY1001") -> str:
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(create_cmd(external_id, phone=phone))
    await drive(bus, order.order_no, "pick", "check", "pack")
    await drive(bus, order.order_no, "ship", waybill="SF1234567890")
    return str(order.order_no)


async def sms_rows(db: Database) -> list[dict[str, object]]:
    return await rows(db, t.outbox, t.outbox.c.channel == "sms")


async def test_shipment_texts_the_customer_with_the_shipping_template_and_a_valid_signature(
    bus: MessageBus, db: Database, fake: FakeAliyunSms, sender: AliyunSmsSender, clock: Clock
) -> None:
    no = await shipped(bus)
    assert await dispatcher(db, sender, clock).run_once() == 1

    [row] = await sms_rows(db)
    assert fake.refusals == []  # the signature, timestamp and nonce were all accepted
    assert fake.sent == [SentSms(PHONE, SIGN, SHIP, {"order_no": no, "waybill": "SF1234567890", "courier": "顺丰速运"},
                                 f"ob{row['id']}", f"您的订单{no}已由顺丰速运发出，运单号SF1234567890，请留意查收。")]
    assert (row["status"], row["attempts"]) == ("delivered", 0)


async def test_accepted_address_change_and_refund_text_the_customer(
    bus: MessageBus, db: Database, fake: FakeAliyunSms, sender: AliyunSmsSender, clock: Clock
) -> None:
    no = await shipped(bus)
    await bus.handle(c.OpenAfterSale(no, "refund", "不想要了", 5_000, by="api", via="api"))
    other, _ = await bus.handle(create_cmd("DY1002"))
    await bus.handle(RequestAddressChange(other.order_no, "上海市浦东新区世纪大道100号", by="api", via="api"))
    d = dispatcher(db, sender, clock)
    while await d.run_once():
        pass

    assert sorted((s.template_code, tuple(s.params.items())) for s in fake.sent) == [
        (SHIP, (("order_no", no), ("waybill", "SF1234567890"), ("courier", "顺丰速运"))),
        (ADDR, (("order_no", other.order_no), ("address", "上海市浦东新区世纪大道100号"))),
        (REFUND, (("order_no", no), ("amount", "50.00"))),
    ]


async def test_opted_out_customer_is_not_texted_and_the_skip_is_audited(
    bus: MessageBus, db: Database, fake: FakeAliyunSms, sender: AliyunSmsSender, clock: Clock
) -> None:
    no = await shipped(bus)
    customer = await bus.handle(SetSmsOptOut("c-4s-01", True, by="cs1", via="wecom"))
    assert customer.sms_opt_out

    await dispatcher(db, sender, clock).run_once()

    [row] = await sms_rows(db)
    assert (row["status"], row["last_error"], row["attempts"]) == ("skipped", "skipped: opted out", 0)
    assert fake.requests == 0
    trail = await rows(db, t.audit_log, t.audit_log.c.entity == "customer")
    assert [(a["action"], a["actor"], a["to_state"]) for a in trail] == [
        ("sms_stop", "cs1", "sms_opt_out"), ("sms_skipped", "system", None)]
    assert trail[1]["detail"]["order_no"] == no and trail[1]["detail"]["phone"] == "138****0000"


async def test_quiet_hours_hold_a_text_until_eight_and_an_urgent_one_goes_at_once(
    bus: MessageBus, db: Database, fake: FakeAliyunSms, sender: AliyunSmsSender, clock: Clock
) -> None:
    await shipped(bus)
    async with UnitOfWork(db) as uow:
        await uow.send(CustomerText("13900000000", "紧急", SMS_SHIPPED, "sms:urgent:1",
                                    params=(("order_no", "X1"), ("waybill", "SF1")), urgent=True), at=clock())
        await uow.commit()
    clock.at("22:30")
    d = dispatcher(db, sender, clock)
    await d.run_once()

    held, urgent = await sms_rows(db)
    assert [s.phone for s in fake.sent] == ["13900000000"]
    eight = (clock.now.astimezone(CST) + timedelta(days=1)).replace(hour=8, minute=0).astimezone(UTC)
    assert (held["status"], held["attempts"], held["next_attempt_at"]) == ("pending", 0, eight)
    assert urgent["status"] == "delivered"

    clock.at("07:59")
    clock.advance(86400)
    assert await d.run_once() == 0
    clock.advance(60)
    await d.run_once()
    assert [s.phone for s in fake.sent] == ["13900000000", PHONE]


async def test_provider_trouble_is_retried_until_the_text_goes(
    bus: MessageBus, db: Database, fake: FakeAliyunSms, sender: AliyunSmsSender, clock: Clock
) -> None:
    await shipped(bus)
    fake.fail_next("isv.BUSINESS_LIMIT_CONTROL")
    fake.fail_next("Throttling.User")
    fake.fail_next(status=503)
    fake.stall_next(1.0)  # the client gives up after 0.3 s (a stall comes before the queued failures)
    d = dispatcher(db, sender, clock)
    errors = []
    for _ in range(4):
        await d.run_once()
        [row] = await sms_rows(db)
        errors.append(row["last_error"].split(":")[0])
        clock.advance(2)
    await d.run_once()

    [row] = await sms_rows(db)
    assert errors == ["aliyun sms", "aliyun isv.BUSINESS_LIMIT_CONTROL", "aliyun Throttling.User", "aliyun HTTP 503"]
    assert (row["status"], row["attempts"]) == ("delivered", 4)
    assert len(fake.sent) == 1


async def test_illegal_number_dies_at_once_and_customer_service_gets_a_task(
    bus: MessageBus, db: Database, fake: FakeAliyunSms, sender: AliyunSmsSender, clock: Clock
) -> None:
    async with UnitOfWork(db) as uow:
        await uow.users.upsert(User("cs1", "刘洋", frozenset({"service"})), clock())
        await uow.commit()
    no = await shipped(bus, phone="12345")
    dead = SmsDeadRows(db, clock=clock)
    await dispatcher(db, sender, clock, on_dead=dead).run_once()

    [row] = await sms_rows(db)
    assert (row["status"], row["attempts"]) == ("dead", 1)
    assert row["last_error"].startswith("aliyun isv.MOBILE_NUMBER_ILLEGAL")
    [task] = await rows(db, t.exceptions)
    assert (task["kind"], task["order_no"]) == ("sms_failed", no)
    assert "123****2345" not in task["message"] and "12345" not in task["message"].replace(no, "")
    [push] = await rows(db, t.outbox, t.outbox.c.channel == "chat")
    assert push["recipient"] == "cs1" and "客户短信未发出" in push["payload"]["text"]
    assert await dead.report() == 0  # told once


async def test_unconfigured_rows_are_set_aside_and_the_young_ones_drain_once_configured(
    bus: MessageBus, db: Database, fake: FakeAliyunSms, sender: AliyunSmsSender, clock: Clock
) -> None:
    old = Deps(clock=lambda: clock() - timedelta(hours=30))
    async with UnitOfWork(db) as uow:
        await uow.send(CustomerText(PHONE, "旧", SMS_SHIPPED, "sms:shipped:OLD1",
                                    params=(("order_no", "OLD1"), ("waybill", "SF9")), order_no="OLD1"), at=old.now)
        await uow.commit()
    no = await shipped(bus)
    await dispatcher(db, UnconfiguredSms(), clock).run_once()
    assert [(r["status"], r["last_error"][:16]) for r in await sms_rows(db)] == [
        ("unconfigured", "not configured: "), ("unconfigured", "not configured: ")]

    assert await revive_unconfigured(db, clock(), 24) == (1, 1)
    await dispatcher(db, sender, clock).run_once()

    older, young = await sms_rows(db)
    assert (older["status"], older["last_error"]) == ("skipped", "skipped: older than 24 h when SMS was configured")
    assert young["status"] == "delivered" and [s.params["order_no"] for s in fake.sent] == [no]


async def test_a_row_written_before_texts_carried_variables_still_goes(
    db: Database, fake: FakeAliyunSms, sender: AliyunSmsSender, clock: Clock
) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(t.outbox.insert().values(
            created_at=clock(), channel="sms", kind="order_shipped", recipient=PHONE, status="pending",
            payload={"text": "您的订单 OB00000007 已发货，运单号 YT123456，请留意查收。"},
            dedup_key="sms:shipped:OB00000007", next_attempt_at=clock(), attempts=0, last_error=""))
    await dispatcher(db, sender, clock).run_once()
    assert [s.params for s in fake.sent] == [{"order_no": "OB00000007", "waybill": "YT123456", "courier": "圆通速递"}]


async def test_no_full_phone_number_or_secret_in_any_log_line(
    bus: MessageBus, db: Database, fake: FakeAliyunSms, sender: AliyunSmsSender, clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await shipped(bus, phone="13812341234")
    await shipped(bus, phone="1381234", external_id="DY1002")  # illegal: dies, logged as dead
    fake.fail_next("isv.BUSINESS_LIMIT_CONTROL")
    d = dispatcher(db, sender, clock, on_dead=SmsDeadRows(db, clock=clock))
    await d.run_once()
    clock.advance(2)
    await d.run_once()
    clock.at("23:00")
    async with UnitOfWork(db) as uow:
        await uow.send(CustomerText("13812341234", "晚", SMS_SHIPPED, "sms:late",
                                    params=(("order_no", "X"), ("waybill", "SF1"))), at=clock())
        await uow.commit()
    await d.run_once()

    assert len(fake.sent) == 1
    ours = [r for r in caplog.records if not r.name.startswith(QUIET_LOGGERS)]  # the SQL loggers stay at WARNING
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in ours)
    assert "138****1234" in logged and "dead" in logged and "quiet hours" in logged
    assert "13812341234" not in logged and "1381234 " not in logged
    assert SECRET not in logged
