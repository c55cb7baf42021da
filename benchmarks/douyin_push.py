"""18,000 Douyin shop pushes against the running app: orders/s ingested and p99 acknowledgement.

The full app (create_app(), as `orderbot serve` runs it, without the scheduler) runs in a SUBPROCESS on a
migrated database (a fresh PostgreSQL database by default, dropped after; `--db sqlite`), its Douyin channel
pointed at a FakeDouyin gateway in this process that holds every order. `--senders` concurrent senders POST
signed batches of 1-10 "101 paid" elements (seeded at random, ~5.5 per batch, as Douyin groups them), one
element per order; each element becomes an inbox row, an order.orderDetail call, and a paid order allocated
to the store. Reported: acknowledgement latency per batch (p50/p99/max), and orders/s from the first push
to the last order created (polled in the database).

    .venv/bin/python benchmarks/douyin_push.py                      # PostgreSQL, 18,000 pushes
    .venv/bin/python benchmarks/douyin_push.py --db sqlite --orders 2000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from benchmarks._support import ServerProcess, command_line, pct, run_on_database, serve  # noqa: E402
from domain import commands as c  # noqa: E402
from handlers.bootstrap import build_bus  # noqa: E402
from handlers.bus import Deps  # noqa: E402
from integrations.db import tables as t  # noqa: E402
from integrations.db.engine import Database  # noqa: E402
from integrations.fakes.douyin import FakeDouyin, push_element, signed_push, trade_data  # noqa: E402

APP_KEY, SECRET, SHOP = "7012345678901234567", "bench-douyin-secret", "4463798"
PATH = "/channels/douyin/callback"


def server_main(db_url: str, fake_base: str) -> None:
    from bot.app import create_app
    from config.settings import DouyinSettings, Settings

    settings = Settings(database_url=db_url, douyin=DouyinSettings(
        app_key=APP_KEY, app_secret=SecretStr(SECRET), shop_id=SHOP, api_base=fake_base, store="SH01"))
    asyncio.run(serve(create_app(settings, deliver=True)))


async def seed_stock(db_url: str, skus: int) -> None:
    db = Database(db_url)
    bus = build_bus(db, Deps())
    for i in range(skus):
        await bus.handle(c.SetStock("SH01", f"BP-{i:03d}", 1_000_000, by="bench", via="api"))
    await db.dispose()


async def orders_created(db: Database) -> int:
    async with db.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(t.orders).where(t.orders.c.channel == "douyin"))
                   or 0)


async def run(db_url: str, args: argparse.Namespace) -> None:
    rng = random.Random(7)
    await seed_stock(db_url, 20)
    if True:
        async with FakeDouyin(APP_KEY, SECRET, SHOP) as fake:
            ids = [f"69500000{i:011d}" for i in range(args.orders)]
            for n, order_id in enumerate(ids):
                fake.add_order(order_id, sku=f"BP-{n % 20:03d}", qty=1 + n % 3, phone=f"139{n:08d}")
            batches: list[tuple[dict[str, str], bytes]] = []
            i = 0
            while i < len(ids):
                size = rng.randint(1, 10)
                elements = [push_element("101", f"{oid}:0:101:1", trade_data("101", oid, SHOP)) for oid in ids[i:i + size]]
                batches.append(signed_push(APP_KEY, SECRET, elements))
                i += size
            server = await ServerProcess.start([__file__, "--serve", db_url, fake.base_url], what="app")
            db = Database(db_url)
            latencies: list[float] = []
            failures = 0
            queue: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()
            for batch in batches:
                queue.put_nowait(batch)
            try:
                async with aiohttp.ClientSession() as session:
                    async def sender() -> None:
                        nonlocal failures
                        while not queue.empty():
                            headers, body = queue.get_nowait()
                            started = time.perf_counter()
                            async with session.post(server.base + PATH, data=body, headers=headers) as response:
                                answer = await response.json()
                            latencies.append(time.perf_counter() - started)
                            if response.status != 200 or answer.get("code") != 0:
                                failures += 1

                    cpu0, t0 = server.cpu_s(), time.perf_counter()
                    await asyncio.gather(*(sender() for _ in range(args.senders)))
                    acked_s = time.perf_counter() - t0
                    print(f"acknowledged {args.orders} pushes in {acked_s:.1f} s, ack p99 "
                          f"{pct(latencies, 0.99) * 1000:.1f} ms; waiting for the orders", flush=True)
                    while (done := await orders_created(db)) < args.orders:
                        if time.perf_counter() - t0 > args.deadline_s:
                            break
                        await asyncio.sleep(0.25)
                    ingest_s = time.perf_counter() - t0
                    cpu = server.cpu_s() - cpu0
            finally:
                await server.stop()
                await db.dispose()
    print(f"douyin pushes: {args.orders} elements in {len(batches)} batches, {args.senders} senders, db={args.db}")
    print(f"  acknowledged in {acked_s:.1f} s ({args.orders / acked_s:.0f} pushes/s), failures {failures}")
    print(f"  ack latency per batch: p50 {pct(latencies, 0.5) * 1000:.1f} ms, p99 {pct(latencies, 0.99) * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms")
    print(f"  orders created: {done} in {ingest_s:.1f} s → {done / ingest_s:.0f} orders/s "
          f"(server CPU {cpu:.0f} s); orderDetail calls {fake.count('order.orderDetail')}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        server_main(sys.argv[2], sys.argv[3])
        return
    parser = command_line(__doc__)
    parser.add_argument("--orders", type=int, default=18_000)
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--deadline-s", type=float, default=1800)
    run_on_database(parser.parse_args(), run)


if __name__ == "__main__":
    main()
