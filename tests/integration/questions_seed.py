"""A small chain to ask questions about: three stores, eight staff, five SKUs, thirteen orders over two weeks in
most states, five after-sales and an out-of-stock exception, each at its own time on an injected clock.

"Now" is Wednesday 2026-03-11 10:00 China time. Used by tests/integration/test_questions*.py and
benchmarks/understand.py.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.asking import Asking
from bot.parser import command_for
from domain import commands as c
from domain.chat import Card, InboundMessage, Reply
from domain.clock import CST
from domain.safety_stock import RegisterSku
from domain.users import User
from handlers.bus import MessageBus
from integrations.db.engine import Database
from integrations.db.inbox_writer import InboxWriter
from integrations.db.uow import UnitOfWork

NOW = datetime(2026, 3, 11, 10, 0, tzinfo=CST).astimezone(UTC)
STORE_NAMES = {"SH01": "浦东店", "SH02": "浦西店", "SH03": "徐汇店"}
STAFF = (
    ("mgr1", "赵刚", {"manager"}, None), ("sup1", "李敏", {"supervisor"}, None), ("sup2", "张伟", {"supervisor"}, None),
    ("wh1", "王强", {"warehouse"}, "SH01"), ("wh2", "陈静", {"warehouse"}, "SH02"), ("cs1", "周婷", {"service"}, None),
    ("pur1", "吴磊", {"purchasing"}, None), ("fin1", "孙丽", {"finance"}, None),
)
SKUS = {"BP-001": "刹车片", "BP-002": "刹车片", "OF-002": "机油滤清器", "SP-003": "火花塞", "WB-004": "雨刮片"}
STOCK = (("SH01", "BP-001", 20), ("SH01", "BP-002", 8), ("SH01", "OF-002", 10), ("SH01", "WB-004", 6),
         ("SH02", "BP-001", 5), ("SH02", "OF-002", 3), ("SH03", "BP-001", 2), ("SH03", "SP-003", 12))


def cst(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=CST).astimezone(UTC)


@dataclass
class Clock:
    at: datetime = NOW

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Seeded:
    orders: dict[str, str] = field(default_factory=dict)  # external id -> order_no
    aftersales: dict[str, str] = field(default_factory=dict)  # label -> aftersale_no


async def seed(db: Database, bus: MessageBus, clock: Clock) -> Seeded:
    out = Seeded()
    clock.at = cst(3, 1, 9)
    async with UnitOfWork(db) as uow:
        for userid, name, roles, store in STAFF:
            await uow.users.upsert(User(userid, name, frozenset(roles), store), clock.at)
        await uow.commit()
    for sku, name in SKUS.items():
        await bus.handle(RegisterSku(sku, name, 50, 3, by="pur1", via="api"))
    for store, sku, on_hand in STOCK:
        await bus.handle(c.SetStock(store, sku, on_hand, by="api", via="api"))

    async def order(ext: str, channel: str, store: str, sku: str, qty: int, at: datetime, *steps: tuple[str, datetime],
                    paid: bool = True, customer: tuple[str, str] = ("C-DY-01", "张先生")) -> str:
        clock.at = at
        made, _ = await bus.handle(c.CreateOrder(
            channel=channel, external_id=ext, customer_id=customer[0], customer_name=customer[1],
            customer_phone="13800000000", address="上海市浦东新区张杨路500号", store=store, paid=paid,
            lines=(c.LineInput(sku, qty, 19_900, SKUS[sku]),), by="api", via="api"))
        no = str(made.order_no)
        for trigger, when in steps:
            clock.at = when
            if trigger == "address":
                await bus.handle(c.ChangeAddress(no, "上海市徐汇区漕溪北路1号", by="cs1", via="wecom"))
                continue
            waybill = f"SF{900000 + len(out.orders)}{ext[-2:]}" if trigger in ("pack",) else None
            await bus.handle(c.FireOrderTrigger(no, trigger, by="wh1", via="wecom", waybill=waybill))
        out.orders[ext] = no
        return no

    shipped = ("pick", "check", "pack", "ship")
    a = await order("DYA01", "douyin", "SH01", "BP-001", 2, cst(3, 3, 15),
                    *((s, cst(3, 3, 16 + i)) for i, s in enumerate(shipped)))
    b = await order("DYB02", "douyin", "SH02", "OF-002", 2, cst(3, 3, 16),
                    *((s, cst(3, 4, 9 + i)) for i, s in enumerate((*shipped, "pick_up", "deliver"))))
    cc = await order("MPC03", "miniprogram", "SH02", "BP-001", 2, cst(3, 5, 11),
                     *((s, cst(3, 5, 12 + i)) for i, s in enumerate(shipped)), customer=("C-MP-03", "李女士"))
    await order("DYD04", "douyin", "SH01", "BP-002", 1, cst(3, 10, 9), ("address", cst(3, 10, 10)))
    await order("K3E05", "k3", "SH03", "SP-003", 2, cst(3, 10, 14), ("cancel", cst(3, 10, 15)),
                customer=("C-K3-05", "上海驰骋汽修厂"))
    await order("DYF06", "douyin", "SH01", "OF-002", 1, cst(3, 10, 16), ("pick", cst(3, 10, 17)))
    await order("DYG07", "douyin", "SH01", "BP-001", 1, cst(3, 11, 7, 30))
    await order("MPH08", "miniprogram", "SH01", "WB-004", 2, cst(3, 11, 8), ("pick", cst(3, 11, 8, 20)),
                ("check", cst(3, 11, 8, 40)), ("pack", cst(3, 11, 9)), customer=("C-MP-03", "李女士"))
    i = await order("DYI09", "douyin", "SH02", "BP-001", 2, cst(3, 11, 8, 30),
                    *((s, cst(3, 11, 9, 10 + 5 * n)) for n, s in enumerate(shipped)))
    await order("K3J10", "k3", "SH02", "OF-002", 1, cst(3, 11, 9), customer=("C-K3-05", "上海驰骋汽修厂"))
    await order("DYK11", "douyin", "SH03", "BP-001", 1, cst(3, 11, 9, 20), paid=False)
    await order("K3L12", "k3", "SH03", "SP-003", 50, cst(3, 11, 7), customer=("C-K3-05", "上海驰骋汽修厂"))
    await order("DYM13", "douyin", "SH01", "BP-001", 1, cst(3, 11, 9, 50), ("pick", cst(3, 11, 9, 55)))

    async def aftersale(label: str, order_no: str, kind: str, fen: int, at: datetime, decide: str = "",
                        by: str = "", when: datetime | None = None) -> None:
        clock.at = at
        made = await bus.handle(c.OpenAfterSale(order_no, kind, "用了两天就异响", fen, by="cs1", via="wecom"))
        out.aftersales[label] = str(made.aftersale_no)
        if decide:
            clock.at = when or at
            command = c.ApproveAfterSale if decide == "approve" else c.RejectAfterSale
            await bus.handle(command(made.aftersale_no, by=by, via="wecom"))

    await aftersale("auto", b, "refund", 10_000, cst(3, 4, 15))  # ¥100: approves itself
    await aftersale("rejected", b, "refund", 25_000, cst(3, 4, 16), "reject", "mgr1", cst(3, 4, 17))
    await aftersale("monday", a, "refund", 30_000, cst(3, 9, 10), "approve", "sup1", cst(3, 9, 11))
    await aftersale("return", cc, "return", 25_000, cst(3, 10, 11), "approve", "sup1", cst(3, 10, 12))
    await aftersale("pending", i, "refund", 35_000, cst(3, 11, 9, 40))
    clock.at = NOW
    return out


class Asker:
    """Questions as people send them: a text message, through the parser, the understander and the bus."""

    def __init__(self, db: Database, bus: MessageBus) -> None:
        self.bus = bus
        self.asking = Asking(db, store_names=STORE_NAMES, refresh_s=3600)
        self.ids = itertools.count(1)
        self.inbox = InboxWriter(db)

    async def __call__(self, user: str, text: str) -> str:
        understander = await self.asking.understander()
        msg = InboundMessage("wecom", user, "text", text=text, message_id=f"ask-{next(self.ids)}")
        await self.inbox.record("wecom", msg.message_id, dict(vars(msg)), NOW)  # as the edge stores it first
        outcome = await self.bus.handle(command_for(msg, understander))
        return "\n".join(r.text if isinstance(r, Reply) else _card(r) for r in outcome.replies)


def _card(card: Card) -> str:
    return "\n".join([card.description, *(f"[{b.text}|{b.key}]" for b in card.buttons)])
