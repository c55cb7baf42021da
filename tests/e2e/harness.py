"""What the WeCom `Chat` and the DingTalk `Ding` e2e harnesses share: the app, settling, seeding orders."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from bot.keys import BUS, DISPATCHER, INBOUND_QUEUE
from domain import commands as c
from domain.clock import utcnow

_restarts = itertools.count(1)


def later() -> datetime:
    """A clock past every inbox lease taken so far: what the sweep sees once a process that died has been
    replaced (each call later than the last, as each restart is)."""
    return utcnow() + timedelta(hours=next(_restarts))


class AppHarness:
    client: TestClient

    @property
    def app(self) -> Any:
        return self.client.server.app

    async def settle(self) -> None:
        """Let background processing finish and deliver everything due."""
        await self.app[INBOUND_QUEUE].drain()
        while await self.app[DISPATCHER].run_once():
            pass

    async def handle(self, command: Any) -> Any:
        return await self.app[BUS].handle(command)

    async def order(self, external_id: str = "DY1001", *, store: str = "SH01", qty: int = 2,
                    amount_fen: int = 19_900, on_hand: int = 10) -> str:
        await self.handle(c.SetStock(store, "BP-001", on_hand, by="api", via="api"))
        order, _ = await self.handle(c.CreateOrder(
            channel="douyin", external_id=external_id, customer_id="C-4S-01", customer_name="浦东4S店",
            customer_phone="13800000000", address="上海市浦东新区张杨路500号", store=store, paid=True,
            lines=(c.LineInput("BP-001", qty, amount_fen, "刹车片"),), by="api", via="api",
        ))
        return str(order.order_no)
