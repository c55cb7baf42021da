"""The floor under the peak-day replay: the same wire work per order done by a bare server, nothing else.

`benchmarks/peak_day.py` drives each order through the lifecycle with signed WeCom callbacks. However the product
is written, each of those exchanges costs at least: the client signing and encrypting the callback, the server
verifying and decrypting it (wechatpy), one transaction on PostgreSQL (UPDATE with the state check, audit row,
outbox row), the reply sent to WeCom over HTTP and the outbox row marked delivered. This script does exactly that
and nothing more, for every order and step of a peak day, with the replay's 42 warehouse hands working one order
at a time, and prints the wall time: what no implementation of the replay can beat on this machine.

Per order (7 exchanges): allocate, pick, check, pack, ship, the courier's signature, settlement. The replay does
more per order (the Douyin order detail fetch, scans and card taps, exceptions, the state watcher's polling), so
this floor flatters the target. The bare server runs in a subprocess; the client and the WeCom receiver here.

    .venv/bin/python benchmarks/peak_floor.py                  # 18,000 orders
    .venv/bin/python benchmarks/peak_floor.py --orders 3000
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from benchmarks._support import ServerProcess, database, pct, serve  # noqa: E402
from benchmarks.peak_support import AES_KEY, CORP_ID, TOKEN  # noqa: E402
from bot.demo_data import USERS  # noqa: E402
from integrations.fakes.wecom_signer import sign_callback, text_xml  # noqa: E402

HANDS = sum(1 for u in USERS if "warehouse" in u.roles)  # the replay's hands: the demo chain's warehouse staff
STEPS = (("paid", "allocate", "allocated"), ("allocated", "pick", "picking"), ("picking", "check", "quality_check"),
         ("quality_check", "pack", "packed"), ("packed", "ship", "shipped"), ("shipped", "deliver", "delivered"),
         ("delivered", "complete", "completed"))
NEXT = {trigger: (before, after) for before, trigger, after in STEPS}
UPDATE = "UPDATE orders SET state = $1, updated_at = $2, version = version + 1 WHERE order_no = $3 AND state = $4"
AUDIT = ("INSERT INTO audit_log (at, actor, via, entity, entity_id, action, from_state, to_state, outcome, reason, "
         "detail) VALUES ($1, $2, 'wecom', 'order', $3, $4, $5, $6, 'ok', '', NULL)")
OUTBOX = ("INSERT INTO outbox (created_at, channel, kind, recipient, payload, status, attempts, next_attempt_at, "
          "last_error) VALUES ($1, 'wecom', 'text', $2, $3::json, 'pending', 0, $1, '') RETURNING id")
DELIVERED = "UPDATE outbox SET status = 'delivered', delivered_at = $1 WHERE id = $2"
CONTENT = re.compile(r"<Content><!\[CDATA\[(\S+) (\S+)\]\]></Content>")
SENDER = re.compile(r"<FromUserName><!\[CDATA\[([^\]]+)\]\]></FromUserName>")


# -- the bare server (subprocess) -----------------------------------------------------------------


def bare_app(db_url: str, receiver: str, pool_size: int) -> web.Application:
    import asyncpg
    from wechatpy.enterprise.crypto import WeChatCrypto
    from wechatpy.exceptions import InvalidSignatureException

    crypto = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
    app = web.Application()
    sending: set[asyncio.Task[None]] = set()

    async def start(app: web.Application) -> None:
        app["pool"] = await asyncpg.create_pool(db_url, min_size=pool_size, max_size=pool_size)
        app["http"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))

    async def stop(app: web.Application) -> None:
        await app["http"].close()
        await app["pool"].close()

    async def reply(outbox_id: int, userid: str, text: str) -> None:
        async with app["http"].post(receiver, json={"touser": userid, "msgtype": "text", "text": {"content": text}}) as r:
            await r.read()
        async with app["pool"].acquire() as conn:
            await conn.execute(DELIVERED, datetime.now(UTC), outbox_id)

    async def callback(request: web.Request) -> web.Response:
        q, body = request.query, await request.read()
        try:
            xml = crypto.decrypt_message(body.decode(), q["msg_signature"], q["timestamp"], q["nonce"])
        except InvalidSignatureException:
            return web.Response(status=403)
        said, sender = CONTENT.search(xml), SENDER.search(xml)
        if said is None or sender is None:
            return web.Response(status=400)
        trigger, order_no = said.group(1), said.group(2)
        before, after = NEXT[trigger]
        now = datetime.now(UTC)
        async with app["pool"].acquire() as conn, conn.transaction():
            if await conn.execute(UPDATE, after, now, order_no, before) != "UPDATE 1":
                return web.Response(status=409)
            await conn.execute(AUDIT, now, sender.group(1), order_no, trigger, before, after)
            outbox_id = await conn.fetchval(OUTBOX, now, sender.group(1), json.dumps({"text": f"{order_no} {after}"}))
        task = asyncio.create_task(reply(outbox_id, sender.group(1), f"{order_no} {after}"))
        sending.add(task)
        task.add_done_callback(sending.discard)
        return web.Response(text="")

    app.router.add_post("/wecom/callback", callback)
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


# -- the client (this process) --------------------------------------------------------------------


async def seed(db_url: str, orders: int) -> list[str]:
    import asyncpg

    conn = await asyncpg.connect(db_url)
    now = datetime.now(UTC)
    numbers = [f"OB{i:08d}" for i in range(orders)]
    lines = json.dumps([{"sku": "BRK-001", "qty": 1, "unit_price_fen": 12000}])
    try:
        await conn.copy_records_to_table("orders", columns=[
            "order_no", "channel", "external_id", "store", "customer_id", "customer_name", "customer_phone", "address",
            "lines", "amount_fen", "state", "waybill", "address_change_pending", "created_at", "updated_at", "version",
        ], records=[(no, "douyin", no, f"SH{i % 18:02d}", f"C{i}", "客户", "13800000000", "上海市浦东新区张杨路100号",
                     lines, 12000, "paid", f"SF{i:010d}", False, now, now, 1) for i, no in enumerate(numbers)])
    finally:
        await conn.close()
    return numbers


async def run(db_url: str, args: argparse.Namespace) -> None:
    raw_url = db_url.replace("postgresql+asyncpg://", "postgresql://")
    numbers = await seed(raw_url, args.orders)
    shown = 0

    async def receive(request: web.Request) -> web.Response:
        nonlocal shown
        await request.read()
        shown += 1
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    receiver = web.Application()
    receiver.router.add_post("/cgi-bin/message/send", receive)
    runner = web.AppRunner(receiver)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver_url = f"http://127.0.0.1:{runner.addresses[0][1]}/cgi-bin/message/send"
    server = await ServerProcess.start([__file__, "--serve", raw_url, "--receiver", receiver_url,
                                        "--pool", str(args.pool)], what="bare server")
    ids = itertools.count(9_100_000_000_000_000_001)
    steps: list[float] = []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for no in numbers:
        queue.put_nowait(no)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as http:

            async def hand(userid: str) -> None:
                while not queue.empty():
                    no = queue.get_nowait()
                    for _, trigger, _ in STEPS:
                        n, now = next(ids), int(time.time())
                        xml = text_xml(userid, f"{trigger} {no}", str(n), now, corp_id=CORP_ID)
                        query, body = sign_callback(TOKEN, AES_KEY, CORP_ID, xml, now, f"n{n % 10**9}")
                        sent = time.monotonic()
                        async with http.post(f"{server.base}/wecom/callback?{urlencode(query)}", data=body) as answer:
                            await answer.read()
                            assert answer.status == 200, answer.status
                        steps.append(time.monotonic() - sent)

            cpu0, load0, start = server.cpu_s(), os.getloadavg()[0], time.monotonic()
            await asyncio.gather(*(hand(f"wh{i}") for i in range(args.hands)))
            wall = time.monotonic() - start
            for _ in range(200):  # the last replies leave
                if shown >= len(steps):
                    break
                await asyncio.sleep(0.05)
            cpu = server.cpu_s() - cpu0
    finally:
        await server.stop()
        await runner.cleanup()
    print(f"peak-day floor: {args.orders:,} orders × {len(STEPS)} signed callbacks, {args.hands} hands one order at a "
          f"time, pool {args.pool}; load average {load0:.1f} at the start")
    print(f"  wall {wall:.1f} s → {len(steps) / wall:,.0f} exchanges/s, {args.orders / wall:,.0f} orders/s; "
          f"18,000 orders at this pace: {18_000 / (args.orders / wall):.0f} s")
    print(f"  exchange (callback sent → answered with the state written): p50 {pct(steps, 0.5) * 1e3:.1f} ms, "
          f"p99 {pct(steps, 0.99) * 1e3:.1f} ms; bare server CPU {cpu:.0f} s ({cpu / wall:.0%} of one core), "
          f"replies received {shown:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=18_000)
    parser.add_argument("--hands", type=int, default=HANDS, help="warehouse hands, one order at a time each")
    parser.add_argument("--pool", type=int, default=16, help="the bare server's PostgreSQL connections")
    parser.add_argument("--serve", default="", help=argparse.SUPPRESS)
    parser.add_argument("--receiver", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(bare_app(args.serve, args.receiver, args.pool)))
        return
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    with database("postgres") as url:
        asyncio.run(run(url, args))


if __name__ == "__main__":
    main()
