"""The K3 catch-up pull of 10,000 SAL_SaleOrder rows (2,500 bills of 4 lines) from the fake K3 WebAPI into
orderbot: rows/s and wall time, signed-header login, pages of 2,000 rows, every order allocated from stock, 8 bills stored at once.

    .venv/bin/python benchmarks/k3_pull.py                  # both databases
    .venv/bin/python benchmarks/k3_pull.py --db postgres --rows 20000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from benchmarks._support import database  # noqa: E402
from domain import commands as c  # noqa: E402
from domain.clock import CST  # noqa: E402
from handlers.bootstrap import build_bus  # noqa: E402
from handlers.bus import Deps  # noqa: E402
from integrations.channels.k3.auth import Identity  # noqa: E402
from integrations.channels.k3.client import K3Client, K3Config  # noqa: E402
from integrations.channels.k3.pull import K3Pull  # noqa: E402
from integrations.db.channel_cursors import ChannelCursors  # noqa: E402
from integrations.db.engine import Database  # noqa: E402
from integrations.fakes.k3 import FakeK3  # noqa: E402

SKUS = [f"BP-{i:03d}" for i in range(40)]


async def run(url: str, rows: int, concurrency: int) -> tuple[float, int]:
    db = Database(url)
    bus = build_bus(db, Deps())
    for sku in SKUS:
        await bus.handle(c.SetStock("SH01", sku, 10**6, by="bench", via="bench"))
    t0 = datetime(2026, 3, 2, 9, tzinfo=CST)
    async with FakeK3() as fake, httpx.AsyncClient(timeout=60) as http:
        for b in range(rows // 4):
            lines = tuple((SKUS[(b + i) % len(SKUS)], 1 + i, 12.5 * (i + 1), "配件") for i in range(4))
            fake.add_bill(f"XSDD{b:07d}", modified=t0 + timedelta(seconds=b), lines=lines)
        who = Identity(fake.acct_id, fake.username, fake.app_id, fake.app_secret)
        k3 = K3Client(http, K3Config(fake.server_url, who))
        pull = K3Pull(k3, ChannelCursors(db), bus.handle, page_size=2000, first_since=t0 - timedelta(days=1),
                      clock=lambda: datetime.now(UTC), concurrency=concurrency)
        started = time.perf_counter()
        report = await pull.run()
        seconds = time.perf_counter() - started
    await db.dispose()
    assert report.failed == "" and report.created == rows // 4, report.summary()
    return seconds, report.rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8, help="bills stored at once (ORDERBOT_K3__CONCURRENCY)")
    args = parser.parse_args()
    for kind in ("sqlite", "postgres") if args.db == "both" else (args.db,):
        with database(kind) as url:
            seconds, rows = asyncio.run(run(url, args.rows, args.concurrency))
        print(f"{kind}: {rows} K3 rows ({rows // 4} orders) in {seconds:.1f} s = {rows / seconds:,.0f} rows/s")


if __name__ == "__main__":
    main()
