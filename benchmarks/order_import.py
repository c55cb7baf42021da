"""`orderbot orders import` of a realistic 100,000-row export: rows/s and wall time, on SQLite and PostgreSQL.

The case: a 50,000-row import ran 3 minutes with no output and opened 18,608 critical 异常. Target: 100,000
rows in ≤ 60 s on each database.

The export is three files, one per channel and in that channel's own columns (config/field_mapping.toml):
抖店 60 %, the mini-program 25 %, K3 15 % of the rows; orders of 1–3 lines (SKUs from 400, 18 stores).
About 1 % of the orders have a bad row (a fractional or negative quantity, a price that is no number, a
missing address, a phone with letters); 3 % of the 抖店 orders were imported the week before (an untimed
earlier export), so they come back as duplicates. Timed: read + check + write of the three files, as the
command does it (the CLI's own code, in this process, progress bar off).

Modes: `live` (open orders: paid ones are allocated and reserve stock; 20 of the SKUs have no stock, so
their orders are shortages, reported as ONE 异常; each allocated order queues its pick task for the store's
warehouse staff) and `history` (closed orders with their own dates: no stock, no pushes).

    .venv/bin/python benchmarks/order_import.py                     # both databases, both modes
    .venv/bin/python benchmarks/order_import.py --db sqlite --mode history --rows 20000
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from benchmarks._support import database  # noqa: E402
from bot import import_run  # noqa: E402
from config.settings import load_settings  # noqa: E402
from integrations.db import tables as t  # noqa: E402

STORES = [f"S{i:02d}" for i in range(1, 19)]
SKUS = [f"SKU-{i:04d}" for i in range(400)]
EMPTY_SKUS = set(SKUS[:20])  # no stock anywhere: their orders are shortages in live mode
CHANNELS = {  # share of the rows, and the columns of that channel's export
    "douyin": (0.60, ["订单编号", "买家ID", "收货人", "收货人手机号", "详细地址", "发货门店", "商家编码", "商品名称",
                      "商品数量", "商品单价", "订单状态", "下单时间"]),
    "miniprogram": (0.25, ["order_id", "openid", "receiver_name", "receiver_phone", "receiver_address",
                           "store_code", "sku_code", "goods_name", "quantity", "price", "pay_status", "create_time"]),
    "k3": (0.15, ["单据编号", "客户编码", "客户名称", "联系电话", "收货地址", "发货组织", "物料编码", "物料名称",
                  "销售数量", "含税单价", "单据状态", "日期", "关闭状态"]),
}
LIVE_STATUS = {"douyin": ("待发货", "待付款"), "miniprogram": ("paid", "unpaid"), "k3": ("已审核", "创建")}
CLOSED_STATUS = {"douyin": ("已完成", "已取消"), "miniprogram": ("completed", "cancelled"), "k3": ("已关闭", "已关闭")}
BAD = ("1.7", "-2", "abc", "no-address", "phone")


@dataclass
class Export:
    path: Path
    rows: int
    orders: int
    bad_orders: int


def write_exports(tmp: Path, total_rows: int, mode: str, rng: random.Random) -> tuple[list[Export], Path]:
    """The three channel files (total_rows rows together) and last week's overlapping 抖店 export."""
    exports = []
    earlier: list[list[str]] = []
    now = datetime.now(UTC)
    for channel, (share, header) in CHANNELS.items():
        target = round(total_rows * share)
        rows: list[list[str]] = []
        orders = bad_orders = 0
        while len(rows) < target:
            orders += 1
            n_lines = min(rng.choice((1, 1, 1, 2, 2, 3)), target - len(rows))
            bad = rng.choice(BAD) if rng.random() < 0.01 else ""
            bad_orders += bool(bad)
            order_rows = _order_rows(channel, orders, n_lines, bad, mode, now, rng)
            rows.extend(order_rows)
            if channel == "douyin" and not bad and rng.random() < 0.03:
                earlier.extend(order_rows)
        path = tmp / f"{channel}-{mode}.csv"
        _write(path, header, rows, "gb18030" if channel == "douyin" else "utf-8-sig")  # 抖店 as Excel saves it
        exports.append(Export(path, len(rows), orders, bad_orders))
    last_week = tmp / f"douyin-{mode}-last-week.csv"
    _write(last_week, CHANNELS["douyin"][1], earlier, "gb18030")
    return exports, last_week


def _order_rows(channel: str, n: int, lines: int, bad: str, mode: str, now: datetime, rng: random.Random) -> list[list[str]]:
    prefix = {"douyin": "69", "miniprogram": "WX", "k3": "XSDD"}[channel]
    external_id = f"{prefix}{n:010d}"
    customer = f"C{rng.randrange(30_000):06d}"
    phone = "phone-x" if bad == "phone" else f"1{rng.randrange(3, 10)}{rng.randrange(10**9):09d}"
    address = "" if bad == "no-address" else f"上海市浦东新区张杨路{rng.randrange(1, 3000)}号{rng.randrange(1, 30)}楼"
    store = rng.choice(STORES) if rng.random() < 0.7 else ""
    if mode == "history":
        status = rng.choice(CLOSED_STATUS[channel]) if rng.random() < 0.9 else CLOSED_STATUS[channel][1]
    else:
        status = LIVE_STATUS[channel][0] if rng.random() < 0.9 else LIVE_STATUS[channel][1]
    when = (now - timedelta(days=rng.uniform(8, 365))).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    out = []
    for i in range(lines):
        sku = rng.choice(SKUS)
        qty = str(rng.randrange(1, 5))
        price = f"{rng.randrange(500, 90_000) / 100:.2f}"
        if bad and i == lines - 1:  # the bad row is the order's last: its good rows are refused with it
            qty = bad if bad in ("1.7", "-2") else qty
            price = "abc" if bad == "abc" else price
        row = [external_id, customer, "张三", phone, address, store, sku, f"刹车片 {sku}", qty, price, status, when]
        if channel == "k3":
            row.append("已关闭" if mode == "history" else "未关闭")
        out.append(row)
    return out


def _write(path: Path, header: list[str], rows: list[list[str]], encoding: str) -> None:
    with path.open("w", encoding=encoding, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


async def seed(url: str) -> None:
    """Stock for every SKU but the empty ones in every store; warehouse staff per store; two supervisors."""
    engine = create_async_engine(url)
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(insert(t.inventory), [
            {"store": store, "sku": sku, "on_hand": 0 if sku in EMPTY_SKUS else 100_000, "reserved": 0, "version": 1,
             "updated_at": now}
            for store in STORES for sku in SKUS
        ])
        users = [{"userid": f"wh-{s}", "name": f"仓管 {s}", "roles": ["warehouse"], "store": s, "dingtalk_id": f"wh-{s}",
                  "active": True, "created_at": now} for s in STORES]
        users += [{"userid": f"sup-{i}", "name": f"主管 {i}", "roles": ["supervisor"], "store": None,
                   "dingtalk_id": f"sup-{i}", "active": True, "created_at": now} for i in (1, 2)]
        await conn.execute(insert(t.users), users)
    await engine.dispose()


async def counts(url: str) -> dict[str, int]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        out = {}
        for name, table in (("orders", t.orders), ("exceptions", t.exceptions), ("outbox", t.outbox),
                            ("audit", t.audit_log)):
            out[name] = int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
    await engine.dispose()
    return out


def run_one(kind: str, mode: str, exports: list[Export], last_week: Path, batch: int) -> None:
    with database(kind) as url:
        os.environ["ORDERBOT_DATABASE_URL"] = url
        settings = load_settings()
        asyncio.run(seed(url))
        history = mode == "history"
        import_run.run(settings, import_run.Options(last_week, history=history, progress=False, batch_orders=batch))
        load_before = os.getloadavg()
        started = time.perf_counter()
        summaries = [
            import_run.run(settings, import_run.Options(e.path, history=history, progress=False, batch_orders=batch))
            for e in exports
        ]
        wall = time.perf_counter() - started
        load_after = os.getloadavg()
        rows = sum(s.rows for s in summaries)
        after = asyncio.run(counts(url))
        print(f"\n== {kind} · {mode} · batch {batch} ==")
        for e, s in zip(exports, summaries, strict=True):
            print(f"  {e.path.name}: {s.rows} rows in {s.seconds:.1f} s ({s.rows_per_s:,.0f} rows/s): "
                  f"new {s.created}, duplicate {s.duplicates}, rejected {len(s.problems)} orders / "
                  f"{len(s.rejected)} rows, shortages {s.shortages.count}")
        print(f"  TOTAL {rows} rows in {wall:.1f} s = {rows / wall:,.0f} rows/s "
              f"({'meets' if wall <= 60 else 'MISSES'} ≤ 60 s)")
        print(f"  load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
              f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} ({os.cpu_count()} CPUs)")
        print(f"  in the database: {after}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--mode", choices=("live", "history", "both"), default="both")
    parser.add_argument("--batch", type=int, default=import_run.BATCH_ORDERS, help="orders per unit of work")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    kinds = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    modes = ("history", "live") if args.mode == "both" else (args.mode,)
    with tempfile.TemporaryDirectory(prefix="orderbot-import-") as tmp:
        for mode in modes:
            exports, last_week = write_exports(Path(tmp), args.rows, mode, random.Random(args.seed))
            print(f"{mode}: {sum(e.rows for e in exports)} rows, {sum(e.orders for e in exports)} orders "
                  f"({sum(e.bad_orders for e in exports)} with a bad row) in {len(exports)} files; "
                  f"last week's export {last_week.stat().st_size // 1024} KiB")
            for kind in kinds:
                run_one(kind, mode, exports, last_week, args.batch)


if __name__ == "__main__":
    main()
