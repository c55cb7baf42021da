"""One logistics sweep over N shipped orders whose tracks Kuaidi100 has pushed, on PostgreSQL or SQLite;
then the push callback route's throughput.

Seeds (not timed) N shipped orders and, with bulk inserts, the courier_tracks rows the pushes would have left:
every waybill in transit except one in 1,000 signed a day before it left the warehouse (a conflict). A few
orders (--untracked) have no track at all, as if their subscription had failed: the sweep polls them over
HTTP from the fake Kuaidi100 (the bounded fallback). Then times one `logistics_sweep` (arbitration from the
joined pages, FireOrderTriggers batches, conflict handling, the fallback poll) and a second, steady-state one.

Last, the route: `POST /channels/kuaidi100/callback` served by the real app on a local port, fed signed
pushes by --push-concurrency aiohttp clients in the same process (so the figure includes the client's cost).

    .venv/bin/python benchmarks/logistics_sweep.py                          # PostgreSQL, 50,000 orders
    .venv/bin/python benchmarks/logistics_sweep.py --db sqlite
    .venv/bin/python benchmarks/logistics_sweep.py --pushes 0               # the sweep only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from benchmarks._support import command_line, run_on_database  # noqa: E402
from bot.app import create_app  # noqa: E402
from config.settings import LogisticsSettings, Settings  # noqa: E402
from domain.clock import local  # noqa: E402
from domain.commands import SweepLogistics  # noqa: E402
from domain.users import User  # noqa: E402
from handlers.bootstrap import build_bus  # noqa: E402
from handlers.bus import Deps  # noqa: E402
from integrations.db import tables as t  # noqa: E402
from integrations.db.engine import Database  # noqa: E402
from integrations.db.uow import UnitOfWork  # noqa: E402
from integrations.fakes.courier import FakeCourier  # noqa: E402
from integrations.logistics.kuaidi100 import Kuaidi100Client, courier_http  # noqa: E402
from integrations.logistics.kuaidi100_push import callback_sign  # noqa: E402

CONFLICT_EVERY = 1000  # one waybill in a thousand was signed a day before it left the warehouse
SALT = "bench-salt"


def waybill(i: int) -> str:
    return f"SF{i:010d}"


async def seed(db: Database, n: int, untracked: int, shipped_at: datetime) -> None:
    """Orders 1..n shipped; tracks for all but the last `untracked` of them."""
    orders = [
        {
            "order_no": f"OB{i:08d}", "channel": "douyin", "external_id": f"DY{i}", "store": f"S{i % 18:02d}",
            "customer_id": f"C{i % 5000:05d}", "customer_name": "", "customer_phone": "", "address": "上海市浦东新区张杨路500号",
            "lines": [{"sku": "BP-001", "name": "刹车片", "qty": 1, "unit_price_fen": 19900}], "amount_fen": 19900,
            "state": "shipped", "waybill": waybill(i), "address_change_pending": False,
            "created_at": shipped_at, "updated_at": shipped_at, "shipped_at": shipped_at, "version": 1,
        }
        for i in range(1, n + 1)
    ]
    moved_at = shipped_at + timedelta(hours=1)
    tracks = [
        {"waybill": waybill(i), "carrier": "shunfeng", "status": "signed", "signed_at": shipped_at - timedelta(days=1),
         "last_at": shipped_at - timedelta(days=1), "last_context": "已签收", "updated_at": moved_at}
        if i % CONFLICT_EVERY == 0 else
        {"waybill": waybill(i), "carrier": "shunfeng", "status": "in_transit", "signed_at": None, "last_at": moved_at,
         "last_context": "到达上海转运中心", "updated_at": moved_at}
        for i in range(1, n - untracked + 1)
    ]
    customers = [
        {"customer_id": f"C{i:05d}", "name": "", "phone": "", "settlement_hold": False, "hold_reason": "",
         "updated_at": shipped_at}
        for i in range(5000)
    ]
    async with UnitOfWork(db) as uow:
        for start in range(0, n, 5000):
            await uow.conn.execute(insert(t.orders), orders[start:start + 5000])
        for start in range(0, len(tracks), 5000):
            await uow.conn.execute(insert(t.courier_tracks), tracks[start:start + 5000])
        await uow.conn.execute(insert(t.customers), customers)
        await uow.users.upsert(User("sup1", "主管", frozenset({"supervisor"})), shipped_at)
        await uow.commit()


async def bench_sweep(db: Database, n: int, untracked: int, batch: int, fallback_limit: int, concurrency: int) -> None:
    shipped_at = datetime.now(UTC) - timedelta(hours=8)  # older than the fallback's 6 h
    t0 = time.perf_counter()
    await seed(db, n, untracked, shipped_at)
    print(f"seeded {n:,} shipped orders, {n - untracked:,} courier_tracks rows in {time.perf_counter() - t0:.1f} s")
    bus = build_bus(db, Deps())
    async with FakeCourier() as fake, courier_http(concurrency, 10.0) as http:
        fake.default_state = "0"  # the untracked ones are in transit when polled
        poller = Kuaidi100Client(http, api_base=fake.base_url, customer=fake.customer, key=fake.key)
        for label in ("sweep", "again"):
            bus.deps.courier = poller
            report = await bus.handle(SweepLogistics(batch_size=batch, concurrency=concurrency,
                                                     fallback_limit=fallback_limit))
            print(f"{label}: {report.summary()}")
            print(f"{label}: {report.swept:,} orders in {report.seconds:.2f} s = {report.swept / report.seconds:,.0f} "
                  f"orders/s; conflicts found {report.conflicts}; HTTP polls {len(fake.queries)} in "
                  f"{report.fallback_seconds:.2f} s of it (batch {batch}, {concurrency} polls in flight)")
            fake.queries.clear()
    async with db.engine.connect() as conn:
        states = dict((await conn.execute(select(t.orders.c.state, func.count()).group_by(t.orders.c.state))).all())
        held = (await conn.execute(select(func.count()).where(t.customers.c.settlement_hold.is_(True)))).scalar()
        opened = (await conn.execute(select(func.count()).where(t.exceptions.c.kind == "logistics_conflict"))).scalar()
    print(f"states after: {states}; conflict exceptions: {opened}; customers held: {held}")


def push_form(i: int, at: datetime) -> dict[str, str]:
    step = {"time": local(at).strftime("%Y-%m-%d %H:%M:%S"), "context": f"到达第 {i % 40} 站"}
    param = json.dumps({"status": "polling", "message": "", "lastResult": {
        "message": "ok", "state": "0", "status": "200", "ischeck": "0", "com": "shunfeng", "nu": waybill(i),
        "data": [step]}}, ensure_ascii=False)
    return {"param": param, "sign": callback_sign(param, SALT)}


async def bench_pushes(url: str, n_orders: int, pushes: int, concurrency: int) -> None:
    settings = Settings(database_url=url, logistics=LogisticsSettings(salt=SALT))
    runner = web.AppRunner(create_app(settings, deliver=False), access_log=None)
    await runner.setup()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    target = f"http://127.0.0.1:{port}/channels/kuaidi100/callback"
    now = datetime.now(UTC)
    forms = [push_form(1 + i % n_orders, now + timedelta(seconds=i)) for i in range(pushes)]
    queue = iter(forms)
    failures = 0
    # aiohttp, not httpx, as the load generator: without sniffio installed, httpcore retries a failing
    # `import sniffio` on every request, and that client cost would swamp the route's own
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:
            nonlocal failures
            for form in queue:
                async with http.post(target, data=form) as resp:
                    if resp.status != 200 or (await resp.json()).get("result") is not True:
                        failures += 1

        async with http.post(target, data=push_form(1, now)) as warm:  # connections, statement cache
            await warm.read()
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - t0
    await runner.cleanup()
    print(f"callback route: {pushes:,} signed pushes in {seconds:.2f} s = {pushes / seconds:,.0f} pushes/s "
          f"({concurrency} concurrent clients in the same process; failures {failures})")


async def bench(url: str, args: argparse.Namespace) -> None:
    db = Database(url, pool_size=8)
    try:
        await bench_sweep(db, args.orders, args.untracked, args.batch, args.fallback_limit, args.concurrency)
    finally:
        await db.dispose()
    if args.pushes:
        await bench_pushes(url, args.orders, args.pushes, args.push_concurrency)


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--untracked", type=int, default=200, help="orders with no pushed track (HTTP fallback)")
    parser.add_argument("--fallback-limit", type=int, default=200)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32, help="fallback polls in flight = pooled connections")
    parser.add_argument("--pushes", type=int, default=5000, help="signed callbacks to time; 0 skips")
    parser.add_argument("--push-concurrency", type=int, default=32)
    run_on_database(parser.parse_args(), bench)

if __name__ == "__main__":
    main()
