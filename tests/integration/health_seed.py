"""A month of orders, after-sales, exceptions and pushes, each at a known time, for the health dashboard's tests.

Times count back from NOW (2026-02-06 20:00 China time, 12:00 UTC); "today" began at 16:00 UTC the day before.
Every figure the tests expect is worked out by hand in the comments below.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Float, Integer, MetaData, String, Table, delete, insert

from domain import commands as c
from domain.users import User
from handlers.bootstrap import build_bus
from handlers.bus import Deps, MessageBus
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from tests.integration.helpers import create_cmd, stock

NOW = datetime(2026, 2, 6, 12, 0, tzinfo=UTC)
M = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


STAFF = (
    User("wh1", "仓管一", frozenset({"warehouse"}), store="SH01"),
    User("sup1", "王主管", frozenset({"supervisor"})),
    User("mgr1", "李经理", frozenset({"manager"})),
    User("svc1", "客服一", frozenset({"service"})),
)


async def add_staff(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        for user in STAFF:
            await uow.users.upsert(user, NOW - 40 * D)
        await uow.commit()


async def seed(db: Database) -> tuple[MessageBus, Clock]:
    """Three orders through the lifecycle, anomalies, inquiries, exceptions and pushes; the clock ends at NOW."""
    await add_staff(db)
    clock = Clock(NOW - 30 * D + H)
    bus = build_bus(db, Deps(clock=clock))
    await stock(bus, "SH01", "BP-001", 100)

    async def at(when: datetime, *commands: Any) -> list[Any]:
        clock.now = when
        return [await bus.handle(cmd) for cmd in commands]

    def fire(order_no: str, trigger: str, waybill: str | None = None) -> c.FireOrderTrigger:
        return c.FireOrderTrigger(order_no, trigger, by="wh1", via="wecom", waybill=waybill)

    # Z, 20 days ago: split 30 min, picking 60 min, then cancelled (never shipped).
    z0 = NOW - 20 * D
    [(z, _)] = await at(z0, create_cmd("DY-Z"))
    await at(z0 + 30 * M, fire(z.order_no, "pick"))
    await at(z0 + 90 * M, fire(z.order_no, "cancel"))

    # Y, 5 days ago: split 20, picking 20, quality check 20, packed 60 → shipped after 120 min;
    # the address changed while packed, new label on 30 min later (an inquiry answered in 30 min);
    # picked up, then forced into 签收异常 (a rule-forced jump). Refund of ¥300 waits for a supervisor,
    # rejected 90 min later (an inquiry answered in 90 min).
    y0 = NOW - 5 * D
    [(y, _)] = await at(y0, create_cmd("DY-Y"))
    await at(y0 + 20 * M, fire(y.order_no, "pick"))
    await at(y0 + 40 * M, fire(y.order_no, "check"))
    await at(y0 + 60 * M, fire(y.order_no, "pack", "SFY0001"))
    await at(y0 + 70 * M, c.ChangeAddress(y.order_no, "上海市徐汇区漕溪北路1号", by="svc1", via="wecom"))
    await at(y0 + 100 * M, c.ConfirmRelabel(y.order_no, "SFY0002", by="wh1", via="wecom"))  # answered in 30 min
    await at(y0 + 120 * M, fire(y.order_no, "ship"))
    await at(y0 + 180 * M, fire(y.order_no, "pick_up"))
    await at(y0 + 240 * M, fire(y.order_no, "report_exception"))
    [refund_y] = await at(y0 + 5 * H, c.OpenAfterSale(y.order_no, "refund", "破损", 30_000, by="svc1", via="wecom"))
    await at(y0 + 5 * H + 90 * M, c.RejectAfterSale(refund_y.aftersale_no, by="sup1", via="wecom", reason="已核实"))

    # X, today (3 h ago): split 10, picking 10, quality check 10, packed 30 → shipped after 60 min.
    # One illegal trigger refused (ship while split); an address change relabelled in 15 min. A ¥50 refund approves itself at once (answered in 0 s);
    # a ¥300 one waits (an open inquiry).
    x0 = NOW - 3 * H
    [(x, _)] = await at(x0, create_cmd("DY-X"))
    try:
        await at(x0 + 5 * M, fire(x.order_no, "ship", "SFX0001"))
    except Exception:  # refused as illegal from split: audited, counted as an anomaly
        pass
    await at(x0 + 10 * M, fire(x.order_no, "pick"))
    await at(x0 + 20 * M, fire(x.order_no, "check"))
    await at(x0 + 30 * M, fire(x.order_no, "pack", "SFX0001"))
    await at(x0 + 35 * M, c.ChangeAddress(x.order_no, "上海市徐汇区漕溪北路2号", by="svc1", via="wecom"))
    await at(x0 + 50 * M, c.ConfirmRelabel(x.order_no, "SFX0002", by="wh1", via="wecom"))  # answered in 15 min
    await at(x0 + 60 * M, fire(x.order_no, "ship"))
    await at(NOW - H, c.OpenAfterSale(x.order_no, "refund", "少发", 5_000, by="svc1", via="wecom"))
    await at(NOW - 30 * M, c.OpenAfterSale(x.order_no, "refund", "破损", 30_000, by="svc1", via="wecom"))

    # Exceptions open now: out of stock 30 min old, a logistics conflict 30 h old; one resolved (not shown).
    clock.now = NOW
    async with UnitOfWork(db) as uow:
        await uow.incidents.open(kind="out_of_stock", message="缺货", at=NOW - 30 * M, sku="BP-001")
        await uow.incidents.open(kind="logistics_conflict", message="签收早于出库", at=NOW - 30 * H, order_no=y.order_no)
        await uow.incidents.open(kind="stuck_order", message="卡单", at=NOW - 2 * H, order_no=x.order_no)
        await uow.conn.execute(t.exceptions.update().where(t.exceptions.c.kind == "stuck_order")
                               .values(resolved_at=NOW - H, resolved_by="sup1"))
        # Pushes: replace what the seeding queued by rows of known status and time.
        await uow.conn.execute(delete(t.outbox))
        await uow.conn.execute(insert(t.outbox), [
            *[_push("wecom_chat", "delivered", NOW - 2 * H) for _ in range(3)],
            _push("wecom_chat", "pending", NOW - 10 * M),
            _push("wecom_chat", "dead", NOW - 4 * H),
            *[_push("dingtalk_chat", "delivered", NOW - 10 * D) for _ in range(2)],
        ])
        await uow.commit()
    return bus, clock


def _push(channel: str, status: str, created_at: datetime) -> dict[str, Any]:
    return {"created_at": created_at, "channel": channel, "kind": "text", "recipient": "mgr1",
            "payload": {"text": "…"}, "status": status, "next_attempt_at": created_at,
            "delivered_at": created_at if status == "delivered" else None}


@asynccontextmanager
async def consistency_scores(db: Database, *scores: tuple[str, datetime, float]) -> AsyncIterator[None]:
    """Stored cross-system consistency scores (kind, window end, score). Where the schema has no
    `consistency_scores` table yet (it comes with the consistency job), a stand-in of its columns is made for the
    test and dropped after it."""
    table = getattr(t, "consistency_scores", None)
    stand_in = table is None
    if stand_in:
        table = Table(
            "consistency_scores", MetaData(),
            Column("id", Integer, primary_key=True, autoincrement=True), Column("kind", String(8), nullable=False),
            Column("window_start", t.TS, nullable=False), Column("window_end", t.TS, nullable=False),
            Column("score", Float, nullable=False), Column("tallies", JSON, nullable=False),
            Column("low_since", t.TS), Column("computed_at", DateTime(timezone=True), nullable=False),
        )
        t.consistency_scores = table  # type: ignore[attr-defined]
        async with db.engine.begin() as conn:
            await conn.run_sync(table.create)
    assert table is not None
    async with db.engine.begin() as conn:
        await conn.execute(insert(table), [
            {"kind": kind, "window_start": end - (H if kind == "hour" else D), "window_end": end, "score": score,
             "tallies": [], "computed_at": end} for kind, end, score in scores
        ])
    try:
        yield
    finally:
        async with db.engine.begin() as conn:
            if stand_in:
                await conn.run_sync(table.drop)
            else:
                await conn.execute(delete(table))
        if stand_in:
            del t.consistency_scores  # type: ignore[attr-defined]
