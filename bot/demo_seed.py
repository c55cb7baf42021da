"""Seeding the demo through the bus: users, stock, the story's hand-written orders and after-sales, then a day
of crowd orders in every state on a clock that walks through today (the chain's stores, staff, SKUs and the
crowd itself are made in bot/demo_data.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot import demo_data
from bot.app import deps_from
from bot.cli_database import open_database
from bot.demo_data import SKUS, STORES, USERS
from config.settings import Settings
from domain import commands as c
from domain.clock import utcnow
from domain.safety_stock import RegisterSku
from domain.stores import SaveStore
from domain.users import User
from handlers.bootstrap import build_bus
from handlers.bus import MessageBus
from integrations.db.uow import UnitOfWork

VIA = "demo"
CHINA = timedelta(hours=8)  # the dashboard's "today" starts at midnight China time
STEP = timedelta(minutes=12)  # between two warehouse steps of a crowd order (less just after midnight)
BATCH = 25  # crowd orders per FireOrderTriggers

STOCK = {
    "SH01": {"BP-001": 40, "OF-002": 60, "SP-003": 120, "WB-004": 30},
    "SH02": {"BP-001": 25, "OF-002": 40, "SP-003": 80, "WB-004": 8},
    "HZ01": {"BP-001": 30, "OF-002": 50, "SP-003": 200, "WB-004": 20},
}


@dataclass(frozen=True)
class DemoOrder:
    key: str  # what the demo calls it
    channel: str
    external_id: str
    customer: tuple[str, str, str]  # id, name, phone
    address: str
    store: str | None
    lines: tuple[tuple[str, int], ...]  # (sku, qty)
    paid: bool = True
    steps: tuple[tuple[str, str, str | None], ...] = ()  # (trigger, by, waybill)


PUDONG_4S = ("C-4S-PD", "浦东宝诚4S店", "13800001111")
XUHUI_4S = ("C-4S-XH", "徐汇永达4S店", "13800002222")
HANGZHOU_4S = ("C-4S-HZ", "杭州元通4S店", "13900003333")
PICKED = (("pick", "wh1", None), ("check", "wh1", None))
ORDERS = (
    DemoOrder("new", "douyin", "DY2602080001", ("C-DY-0001", "张先生", "13600000001"),
              "上海市浦东新区张杨路500号", "SH01", (("BP-001", 1),)),
    DemoOrder("picking", "douyin", "DY2602080002", ("C-DY-0002", "王先生", "13600000002"),
              "上海市浦东新区世纪大道88号", "SH01", (("OF-002", 2), ("SP-003", 4)), steps=(("pick", "wh1", None),)),
    DemoOrder("packed", "miniprogram", "MP2602080003", ("C-MP-0003", "李女士", "13600000003"),
              "上海市浦东新区锦绣路1001弄", "SH01", (("WB-004", 2),),
              steps=(*PICKED, ("pack", "wh1", "SF1402600003"))),
    DemoOrder("shipped", "miniprogram", "MP2602080004", HANGZHOU_4S, "杭州市西湖区文三路259号", "HZ01",
              (("BP-001", 12),),
              steps=(("pick", "wh2", None), ("check", "wh2", None), ("pack", "wh2", "YT8800260004"),
                     ("ship", "wh2", None))),
    DemoOrder("split", "k3", "K3-SO-2602080005", ("C-K3-0101", "上海驰骋汽修厂", "02150000005"),
              "上海市闵行区莘庄工业区申富路66号", None, (("SP-003", 150), ("WB-004", 25))),
    DemoOrder("out_of_stock", "k3", "K3-SO-2602080006", PUDONG_4S, "上海市浦东新区龙阳路2000号", "SH01",
              (("BP-001", 60),)),
    DemoOrder("unpaid", "douyin", "DY2602080007", ("C-DY-0007", "赵女士", "13600000007"),
              "上海市徐汇区漕溪北路398号", "SH02", (("WB-004", 1),), paid=False),
    DemoOrder("delivered", "k3", "K3-SO-2602080008", XUHUI_4S, "上海市徐汇区宜山路700号", "SH02",
              (("BP-001", 6),),
              steps=(("pick", "wh1", None), ("check", "wh1", None), ("pack", "wh1", "SF1402600008"),
                     ("ship", "wh1", None), ("deliver", "courier", None))),
)
AFTERSALES = (  # (order key, kind, reason, amount in fen)
    ("delivered", "return", "刹车片装车后异响，4S店退回5套", 150_000),
    ("shipped", "return", "整批刹车片型号发错（应为后轮），退货退款", 280_000),
)


@dataclass
class Seeded:
    orders: dict[str, str] = field(default_factory=dict)  # demo key -> order_no
    aftersales: list[str] = field(default_factory=list)
    crowd: dict[str, list[str]] = field(default_factory=dict)  # end state -> the crowd's order numbers


async def seed(settings: Settings) -> Seeded:
    """Users by hand (there is no command for them); stock, orders and after-sales through the bus."""
    seeded = Seeded()
    async with open_database(settings) as db:
        async with UnitOfWork(db) as uow:
            for user in USERS:
                await uow.users.upsert(User(user.userid, user.name, user.roles, user.store, user.userid), utcnow())
            await uow.commit()
        bus = build_bus(db, deps_from(settings))
        for store, counts in STOCK.items():
            for sku, on_hand in counts.items():
                await bus.handle(c.SetStock(store, sku, on_hand, by="buyer1", via=VIA))
        for spec in ORDERS:
            customer_id, name, phone = spec.customer
            lines = tuple(c.LineInput(sku, qty, SKUS[sku][1], SKUS[sku][0]) for sku, qty in spec.lines)
            order, _ = await bus.handle(c.CreateOrder(
                channel=spec.channel, external_id=spec.external_id, customer_id=customer_id, customer_name=name,
                customer_phone=phone, address=spec.address, lines=lines, paid=spec.paid, store=spec.store,
                by=spec.channel, via=VIA,
            ))
            seeded.orders[spec.key] = order.order_no
            for trigger, by, waybill in spec.steps:
                await bus.handle(c.FireOrderTrigger(order.order_no, trigger, by=by, via=VIA, waybill=waybill))
        for key, kind, reason, amount_fen in AFTERSALES:
            aftersale = await bus.handle(
                c.OpenAfterSale(seeded.orders[key], kind, reason, amount_fen, by="cs1", via=VIA)
            )
            seeded.aftersales.append(aftersale.aftersale_no)
        await seed_crowd(bus, seeded)
        for store, (address, phone) in demo_data.STORE_ADDRESSES.items():  # last: the seeding takes no e-waybills
            await bus.handle(SaveStore(store, STORES[store], address, phone, by="limin", via=VIA))
    return seeded


def seeded_day(now: datetime) -> tuple[datetime, timedelta, timedelta]:
    """When the seeded day starts, how long orders keep arriving, and the gap between two warehouse steps: all of
    it today (China time) and before `now`, however early in the day the demo starts (just after midnight the day
    is minutes long and the steps seconds apart)."""
    midnight = (now + CHINA).replace(hour=0, minute=0, second=0, microsecond=0) - CHINA
    margin = min(timedelta(minutes=5), (now - midnight) / 20)
    start = max(now - timedelta(hours=9), midnight + margin)
    end = now - min(timedelta(minutes=30), (now - midnight) / 20)
    steps = max(len(path) for path in demo_data.PATHS.values())
    step_gap = min(STEP, (end - start) * 0.4 / steps)
    return start, end - start - step_gap * steps, step_gap


async def seed_crowd(bus: MessageBus, seeded: Seeded) -> None:
    """The catalogue, the crowd stores' stock and a day of orders in every state, through the bus, on a clock that
    walks through today (so the dashboard's processing times and the audit trail read like a real day).
    Steps go in batches (FireOrderTriggers: one unit of work per trigger and batch) to keep start-up short."""
    real_clock = bus.deps.clock
    now = real_clock()
    start, span, step_gap = seeded_day(now)
    try:
        bus.deps.clock = lambda: start
        for sku, (name, _) in demo_data.SKUS.items():
            await bus.handle(RegisterSku(sku, name, replenish_threshold=40, lead_time_days=3, by="buyer1", via=VIA))
        for store, skus in demo_data.crowd_stock().items():
            for sku in skus:
                await bus.handle(c.SetStock(store, sku, demo_data.CROWD_STOCK, by="buyer1", via=VIA))
        crowd = demo_data.crowd_orders()
        created: dict[str, list[tuple[str, datetime]]] = {}
        for i, spec in enumerate(crowd):
            at = start + span * i / len(crowd)
            bus.deps.clock = lambda at=at: at  # type: ignore[misc]
            customer_id, name, phone = spec.customer
            lines = tuple(c.LineInput(sku, qty, SKUS[sku][1], SKUS[sku][0]) for sku, qty in spec.lines)
            order, _ = await bus.handle(c.CreateOrder(
                channel=spec.channel, external_id=spec.external_id, customer_id=customer_id, customer_name=name,
                customer_phone=phone, address=spec.address, lines=lines, paid=spec.end_state != "pending_payment",
                store=spec.store, by=spec.channel, via=VIA,
            ))
            created.setdefault(spec.end_state, []).append((order.order_no, at))
        for state, orders in created.items():
            seeded.crowd[state] = [no for no, _ in orders]
            for chunk in range(0, len(orders), BATCH):
                batch = orders[chunk:chunk + BATCH]
                for step, trigger in enumerate(demo_data.PATHS[state], start=1):
                    at = batch[-1][1] + step_gap * step
                    bus.deps.clock = lambda at=at: at  # type: ignore[misc]
                    nos = tuple(no for no, _ in batch)
                    waybills = tuple((no, f"YT9{no[-8:]}") for no in nos) if trigger == "pack" else ()
                    outcome = await bus.handle(c.FireOrderTriggers(nos, trigger, by=_actor(trigger), via=VIA,
                                                                   waybills=waybills))
                    if outcome.refused:
                        raise RuntimeError(f"demo seeding: {trigger} refused: {outcome.refused}")
    finally:
        bus.deps.clock = real_clock


def _actor(trigger: str) -> str:
    if trigger in ("pick_up", "deliver", "report_exception"):
        return "courier"
    return {"complete": "fin1", "cancel": "cs1"}.get(trigger, "warehouse")

