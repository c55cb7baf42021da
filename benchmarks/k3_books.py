"""Booking shipped orders' receivables in the fake K3 through the outbox: documents/s, each an ExecuteBillQuery
(booked already?), Save, Submit and Audit with signed headers, then the bill number stored and audited.

    .venv/bin/python benchmarks/k3_books.py                  # both databases
    .venv/bin/python benchmarks/k3_books.py --db sqlite --orders 1000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from benchmarks._support import database  # noqa: E402
from domain import commands as c  # noqa: E402
from handlers.bootstrap import build_bus  # noqa: E402
from handlers.bus import Deps  # noqa: E402
from integrations.channels.k3.auth import Identity  # noqa: E402
from integrations.channels.k3.books import BooksConfig, K3Books  # noqa: E402
from integrations.channels.k3.books_outbox import K3BooksSender  # noqa: E402
from integrations.channels.k3.client import K3Client, K3Config  # noqa: E402
from integrations.db.engine import Database  # noqa: E402
from integrations.delivery.dispatcher import OutboxDispatcher  # noqa: E402
from integrations.fakes.k3 import FakeK3  # noqa: E402


async def run(url: str, orders: int) -> float:
    db = Database(url)
    bus = build_bus(db, Deps())
    await bus.handle(c.SetStock("SH01", "BP-001", orders * 2, by="bench", via="bench"))
    for i in range(orders):
        order, _ = await bus.handle(c.CreateOrder(
            channel="douyin", external_id=f"DY{i:07d}", customer_id="C-4S-01", customer_name="浦东4S店",
            customer_phone="13800000000", address="上海市浦东新区张杨路500号", store="SH01", paid=True,
            lines=(c.LineInput("BP-001", 2, 19_900, "刹车片"),), by="bench", via="bench"))
        for trigger in ("pick", "check", "pack", "ship"):
            await bus.handle(c.FireOrderTrigger(order.order_no, trigger, by="bench", via="bench", waybill=f"SF{i}"))
    async with FakeK3() as fake, httpx.AsyncClient(timeout=60) as http:
        who = Identity(fake.acct_id, fake.username, fake.app_id, fake.app_secret)
        books = K3Books(K3Client(http, K3Config(fake.server_url, who)), BooksConfig("101"))
        dispatcher = OutboxDispatcher(db, {"k3": K3BooksSender(books, db)})
        started = time.perf_counter()
        while await dispatcher.run_once():
            pass
        seconds = time.perf_counter() - started
        assert len(fake.books.receivables) == orders and all(b.status == "C" for b in fake.books.receivables.values())
    await db.dispose()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--orders", type=int, default=300)
    args = parser.parse_args()
    for kind in ("sqlite", "postgres") if args.db == "both" else (args.db,):
        with database(kind) as url:
            seconds = asyncio.run(run(url, args.orders))
        print(f"{kind}: {args.orders} receivables booked in {seconds:.1f} s = {args.orders / seconds:,.1f} /s")


if __name__ == "__main__":
    main()
