"""The peak day's orders, drawn once from a seed: when each arrives, through which channel, for which store and
person, and which of the case's exceptions it meets; and the database they start from. benchmarks/peak_day.py
replays them."""

from __future__ import annotations

import random
from dataclasses import dataclass

from bot.demo_data import SKUS, STORES, STORY_SKUS, SURGE_SKU, USERS
from domain import commands as c
from domain.clock import utcnow
from domain.users import User
from handlers.bootstrap import build_bus
from handlers.bus import Deps
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork

# orders per hour of the peak day (China time, 0-23): quiet nights, a morning and an afternoon wave,
# the evening live broadcast
HOURLY = (1, 1, 1, 1, 1, 2, 4, 6, 9, 10, 10, 9, 7, 8, 9, 9, 8, 7, 7, 9, 12, 11, 6, 3)
SURGE_HOUR = 20  # the live broadcast that sells the front brake pads
# the exception mix (shares of all orders; the case gives no rates, these are the assumption of this replay)
MIX = {"address": 0.02, "courier": 0.005, "surge": 0.03, "refund": 0.015}
SURGE_FILL = 2 / 3  # the surge SKU's stock covers this share of its orders; the rest run out of stock
DELIVER_SHARE = 0.1  # shipped orders the courier then reports signed and finance settles (complete)
AUTO_REFUND_YUAN, BIG_REFUND_YUAN = 120, 260  # under / over REFUND__AUTO_APPROVE_LIMIT (200)
UNIT_YUAN = 380


@dataclass(frozen=True)
class Planned:
    i: int
    at_s: float  # arrival, seconds after the day starts
    channel: str  # douyin | api
    external_id: str
    store: str
    sku: str
    worker: str
    phone: str
    by_scan: bool  # the pick step is a scan and a tap on the card's button, not a typed command
    exception: str = ""  # "" | address | courier | surge | refund
    big_refund: bool = False
    deliver: bool = False

    @property
    def waybill(self) -> str:
        return f"SF{7_000_000_000 + self.i}"

    @property
    def new_waybill(self) -> str:
        return f"SF{8_000_000_000 + self.i}"

    @property
    def new_address(self) -> str:
        return f"上海市静安区南京西路{1000 + self.i % 900}号"


def warehouse_staff() -> dict[str, list[str]]:
    staff: dict[str, list[str]] = {}
    for user in USERS:
        if "warehouse" in user.roles and user.store:
            staff.setdefault(user.store, []).append(user.userid)
    return staff


def store_skus(skus: list[str]) -> dict[str, str]:
    """Each SKU is stocked in exactly one store, so a Douyin order (no store named) is allocated to that store."""
    stores = list(STORES)
    return {sku: stores[n % len(stores)] for n, sku in enumerate(skus)}


def plan(orders: int, day_s: float, seed: int, skus: list[str]) -> list[Planned]:
    rng = random.Random(seed)
    staff, where = warehouse_staff(), store_skus(skus)
    hours = rng.choices(range(24), weights=HOURLY, k=orders)
    kinds = _exceptions(orders, rng)
    customers = [f"139{rng.randrange(10**8):08d}" for _ in range(max(20, orders // 50))]
    turns: dict[str, int] = {}
    out = []
    for i in range(orders):
        kind = kinds.get(i, "")
        hour = SURGE_HOUR if kind == "surge" else hours[i]
        sku = SURGE_SKU if kind == "surge" else rng.choice(skus)
        store = "SH01" if kind == "surge" else where[sku]
        hands = staff[store]
        worker = hands[turns.get(store, 0) % len(hands)]
        turns[store] = turns.get(store, 0) + 1
        channel = "douyin" if rng.random() < 0.6 else "api"
        external_id = f"6950{i:015d}" if channel == "douyin" else f"API-PEAK-{i:06d}"
        out.append(Planned(
            i=i, at_s=(hour + rng.random()) / 24 * day_s, channel=channel, external_id=external_id, store=store,
            sku=sku, worker=worker, phone=rng.choice(customers), by_scan=rng.random() < 0.5, exception=kind,
            big_refund=kind == "refund" and rng.random() < 0.5,
            deliver=not kind and rng.random() < DELIVER_SHARE,
        ))
    return sorted(out, key=lambda o: o.at_s)


def surge_stock(planned: list[Planned]) -> int:
    return int(sum(1 for o in planned if o.exception == "surge") * SURGE_FILL)


def _exceptions(orders: int, rng: random.Random) -> dict[int, str]:
    """Distinct orders for each kind; at least one of each, so a tiny run meets them all."""
    pool = list(range(orders))
    rng.shuffle(pool)
    kinds: dict[int, str] = {}
    for kind, share in MIX.items():
        for _ in range(max(1, round(share * orders))):
            if pool:
                kinds[pool.pop()] = kind
    return kinds


def crowd_skus() -> list[str]:
    return sorted(s for s in SKUS if s not in STORY_SKUS)


async def seed(db_url: str, planned: list[Planned]) -> None:
    """The demo's 62 staff and 18 stores; every SKU stocked in one store, plenty; the surge SKU short."""
    db = Database(db_url)
    try:
        async with UnitOfWork(db) as uow:
            for user in USERS:
                await uow.users.upsert(User(user.userid, user.name, user.roles, user.store, user.userid), utcnow())
            await uow.commit()
        bus = build_bus(db, Deps())
        stores = {o.sku: o.store for o in planned if o.exception != "surge"}
        for sku, store in stores.items():
            await bus.handle(c.SetStock(store, sku, 1_000_000, by="buyer1", via="api"))
        await bus.handle(c.SetStock("SH01", SURGE_SKU, surge_stock(planned), by="buyer1", via="api"))
    finally:
        await db.dispose()
