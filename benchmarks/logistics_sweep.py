"""One logistics sweep over N shipped orders against the fake Kuaidi100 server, on PostgreSQL or SQLite.

Seeds the orders with bulk inserts (not timed), scripts every waybill as "in transit" except a few signed a
day before they left (conflicts), then times one `logistics_sweep`: HTTP query per waybill through the real
client (semaphore-bounded), arbitration, FireOrderTriggers batches, conflict handling.

    .venv/bin/python benchmarks/logistics_sweep.py                          # PostgreSQL, 50,000 orders
    .venv/bin/python benchmarks/logistics_sweep.py --db sqlite --orders 10000
    .venv/bin/python benchmarks/logistics_sweep.py --courier-process        # the fake in its own process
    .venv/bin/python benchmarks/logistics_sweep.py --no-http                # the database side alone
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select  # noqa: E402

from domain.arbitration import CourierReport  # noqa: E402
from domain.users import User  # noqa: E402
from handlers.bus import Deps  # noqa: E402
from handlers.logistics import logistics_sweep  # noqa: E402
from handlers.wiring import build_bus  # noqa: E402
from integrations.db import migrate  # noqa: E402
from integrations.db import tables as t  # noqa: E402
from integrations.db.engine import Database  # noqa: E402
from integrations.db.uow import UnitOfWork  # noqa: E402
from integrations.fakes.courier import FakeCourier  # noqa: E402
from integrations.logistics.kuaidi100 import CourierTracking, Kuaidi100Client, courier_http, parse_track  # noqa: E402

PG_ADMIN = os.environ.get("ORDERBOT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
CONFLICT_EVERY = 1000  # one waybill in a thousand was signed a day before it left the warehouse


async def seed(db: Database, n: int, shipped_at: datetime) -> None:
    rows = [
        {
            "order_no": f"OB{i:08d}", "channel": "douyin", "external_id": f"DY{i}", "store": f"S{i % 18:02d}",
            "customer_id": f"C{i % 5000:05d}", "customer_name": "", "customer_phone": "", "address": "上海市浦东新区张杨路500号",
            "lines": [{"sku": "BP-001", "name": "刹车片", "qty": 1, "unit_price_fen": 19900}], "amount_fen": 19900,
            "state": "shipped", "waybill": f"SF{i:010d}", "address_change_pending": False,
            "created_at": shipped_at, "updated_at": shipped_at, "shipped_at": shipped_at, "version": 1,
        }
        for i in range(1, n + 1)
    ]
    customers = [
        {"customer_id": f"C{i:05d}", "name": "", "phone": "", "settlement_hold": False, "hold_reason": "",
         "updated_at": shipped_at}
        for i in range(5000)
    ]
    async with UnitOfWork(db) as uow:
        for start in range(0, n, 5000):
            await uow.conn.execute(insert(t.orders), rows[start:start + 5000])
        await uow.conn.execute(insert(t.customers), customers)
        await uow.users.upsert(User("sup1", "主管", frozenset({"supervisor"})), shipped_at)
        await uow.commit()


def script(fake: FakeCourier, n: int, shipped_at: datetime) -> None:
    fake.default_state = "0"  # in transit
    for i in range(CONFLICT_EVERY, n + 1, CONFLICT_EVERY):
        fake.script(f"SF{i:010d}", "3", (shipped_at - timedelta(days=1), "已签收"))


def serve_courier(n: int, shipped_at: datetime, port_out: multiprocessing.Queue[int], stop: multiprocessing.Event) -> None:  # type: ignore[type-arg]
    async def run() -> None:
        async with FakeCourier() as fake:
            script(fake, n, shipped_at)
            port_out.put(int(fake.base_url.rsplit(":", 1)[1]))
            await asyncio.to_thread(stop.wait)

    asyncio.run(run())


class InMemoryTracking:
    """The fake's scripted answers without HTTP: what the sweep costs on the database side alone."""

    def __init__(self, fake: FakeCourier) -> None:
        self.fake = fake

    async def track_many(self, waybills: Sequence[str], *, gate: asyncio.Semaphore) -> dict[str, CourierReport]:
        default = {"state": self.fake.default_state, "data": []}
        return {w: parse_track(w, self.fake.tracks.get(w, default)) for w in waybills}


async def bench(url: str, n: int, concurrency: int, batch: int, courier_process: bool, memory: bool) -> None:
    shipped_at = datetime.now(UTC) - timedelta(hours=2)
    db = Database(url, pool_size=8)
    t0 = time.perf_counter()
    await seed(db, n, shipped_at)
    print(f"seeded {n} shipped orders in {time.perf_counter() - t0:.1f} s")
    bus = build_bus(db, Deps())
    fake = FakeCourier()
    proc = None
    if courier_process:
        ports: multiprocessing.Queue[int] = multiprocessing.Queue()
        stop = multiprocessing.Event()
        proc = multiprocessing.Process(target=serve_courier, args=(n, shipped_at, ports, stop), daemon=True)
        proc.start()
        base = f"http://127.0.0.1:{ports.get(timeout=30)}"
    else:
        await fake.start()
        script(fake, n, shipped_at)
        base = fake.base_url
    async with courier_http(concurrency, 10.0) as http:
        client: CourierTracking = Kuaidi100Client(http, api_base=base, customer=fake.customer, key=fake.key)
        if memory:
            client = InMemoryTracking(fake)
        report = await logistics_sweep(db, bus, client, bus.deps, batch_size=batch, concurrency=concurrency)
    print(report.summary())
    print(f"sweep: {report.seconds:.2f} s = {report.polled / report.seconds:,.0f} orders/s "
          f"(concurrency {concurrency}, batch {batch}, courier {'none (no HTTP)' if memory else 'own process' if courier_process else 'in-process'})")
    async with db.engine.connect() as conn:
        states = dict((await conn.execute(select(t.orders.c.state, func.count()).group_by(t.orders.c.state))).all())
        held = (await conn.execute(select(func.count()).where(t.customers.c.settlement_hold.is_(True)))).scalar()
    print(f"states after: {states}; customers held: {held}")
    if proc is not None:
        stop.set()
        proc.join(timeout=5)
    else:
        await fake.close()
    await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--courier-process", action="store_true", help="run the fake courier in its own process")
    parser.add_argument("--no-http", action="store_true", help="scripted answers without HTTP: the database side alone")
    args = parser.parse_args()
    if args.db == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            migrate.upgrade(url)
            asyncio.run(bench(url, args.orders, args.concurrency, args.batch, args.courier_process, args.no_http))
        return
    import asyncpg

    name = f"orderbot_bench_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
        migrate.upgrade(url)
        asyncio.run(bench(url, args.orders, args.concurrency, args.batch, args.courier_process, args.no_http))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
