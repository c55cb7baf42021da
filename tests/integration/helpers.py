"""Small builders shared by the integration tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from domain import commands as c
from handlers.bus import MessageBus
from integrations.db import tables as t
from integrations.db.engine import Database

CLIENT_TIMEOUT_S = 0.3  # the platform-client tests' HTTP time-out (the `http` fixture in conftest.py)


class Clock:
    """Epoch seconds that a test moves by hand: a platform client's clock and its fake's, kept together."""

    def __init__(self, now: float = 1_760_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def create_cmd(external_id: str = "DY1001", *, store: str | None = "SH01", qty: int = 2, paid: bool = True,
               sku: str = "BP-001", phone: str = "13800000000") -> c.CreateOrder:
    return c.CreateOrder(
        channel="douyin", external_id=external_id, customer_id="C-4S-01", customer_name="浦东4S店",
        customer_phone=phone, address="上海市浦东新区张杨路500号", store=store, paid=paid,
        lines=(c.LineInput(sku, qty, 19_900, "刹车片"),), by="api", via="api",
    )


async def stock(bus: MessageBus, store: str, sku: str, on_hand: int) -> None:
    await bus.handle(c.SetStock(store, sku, on_hand, by="api", via="api"))


async def rows(db: Database, table: Any, *where: Any) -> list[dict[str, Any]]:
    async with db.engine.connect() as conn:
        result = await conn.execute(select(table).where(*where).order_by(*table.primary_key.columns))
        return [dict(r._mapping) for r in result]


async def inventory(db: Database, store: str, sku: str) -> tuple[int, int]:
    found = await rows(db, t.inventory, t.inventory.c.store == store, t.inventory.c.sku == sku)
    return found[0]["on_hand"], found[0]["reserved"]


async def drive(bus: MessageBus, order_no: str, *triggers: str, by: str = "wh1", waybill: str | None = None) -> None:
    for trigger in triggers:
        await bus.handle(c.FireOrderTrigger(order_no, trigger, by=by, via="wecom", waybill=waybill))
