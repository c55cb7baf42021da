"""Encrypted WeCom text callbacks against the whole app, and against a bare decrypt-and-answer endpoint.

One run measures:
  (a) closed loop: N concurrent senders POST signed, encrypted text callbacks ("查询 OB0000000k" and
      "帮助" from known users, every one with its own MsgId) to the FULL app — create_app() on a
      migrated database (SQLite in a temp dir, or `--db postgres`: a fresh database created and dropped
      here), delivering replies to a FakeWeCom — and reports acknowledged requests/s, plus how long the
      background processing (inbox → bus → outbox → FakeWeCom) took to catch up;
  (b) the same load against a bare aiohttp endpoint that only verifies and decrypts with wechatpy
      (WeChatCrypto.decrypt_message) and answers 200: the ceiling of the protocol alone. Ratio a / b;
  (c) open loop against the full app: one message every 1/rate s for `--duration` s (sent on schedule
      whether or not earlier ones were answered), p50/p99/max acknowledgement latency;
  (d) on PostgreSQL, the same load against the durable floor: the bare endpoint plus the least a durable
      acknowledgement must do, every message INSERTed (one statement per batch of waiting messages, one batch
      at a time, on a kept raw asyncpg connection) before its 200. Ratio d / b is what this machine allows.

Processes: each server (full app, bare endpoint) runs in a SUBPROCESS of this script on 127.0.0.1,
port 0, under aiohttp's web.AppRunner, so the load generator does not steal the server's event loop.
The client (one aiohttp ClientSession over real sockets) and the FakeWeCom that receives the replies
run in this parent process. Requests are signed before the clock starts. Server CPU is read from
/proc for each phase.

    .venv/bin/python benchmarks/wecom_callback.py                 # SQLite
    .venv/bin/python benchmarks/wecom_callback.py --db postgres --senders 32 --requests 4000
    .venv/bin/python benchmarks/wecom_callback.py --profile var/profile   # cProfile, full app
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shlex
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from sqlalchemy import delete, func, select  # noqa: E402
from wechatpy.enterprise.crypto import WeChatCrypto  # noqa: E402
from wechatpy.enterprise.exceptions import InvalidCorpIdException  # noqa: E402
from wechatpy.exceptions import InvalidSignatureException  # noqa: E402
from yarl import URL  # noqa: E402

from benchmarks._support import ServerProcess, database, pct, serve  # noqa: E402
from domain import commands as c  # noqa: E402
from domain.clock import utcnow  # noqa: E402
from domain.users import User  # noqa: E402
from handlers.bootstrap import build_bus  # noqa: E402
from handlers.bus import Deps  # noqa: E402
from integrations.db import tables as t  # noqa: E402
from integrations.db.engine import Database  # noqa: E402
from integrations.db.uow import UnitOfWork  # noqa: E402
from integrations.fakes.wecom import FakeWeCom  # noqa: E402
from integrations.fakes.wecom_signer import sign_callback, text_xml  # noqa: E402

TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
CORP_ID = "ww1436e0e65a779aee"
SECRET = "bench-secret"
PATH = "/wecom/callback"

Prepared = tuple[URL, bytes]


# -- the servers (run in the subprocess) ----------------------------------------------------------


def bare_app() -> web.Application:
    """Verify and decrypt with wechatpy, answer 200: what any callback endpoint has to do at least."""
    crypto = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)

    async def callback(request: web.Request) -> web.Response:
        q = request.query
        body = await request.read()
        try:
            crypto.decrypt_message(body.decode("utf-8"), q["msg_signature"], q["timestamp"], q["nonce"])
        except (InvalidSignatureException, InvalidCorpIdException):
            return web.Response(status=403)
        return web.Response(text="")

    app = web.Application()
    app.router.add_post(PATH, callback)
    return app


FLOOR_TABLE = "bench_ack_floor"
FLOOR_INSERT = (f"INSERT INTO {FLOOR_TABLE} SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[]::json[]) "
                "ON CONFLICT DO NOTHING RETURNING message_id")


def floor_app(db_url: str) -> web.Application:
    """The bare endpoint, and each message stored before its answer: group commit on one raw asyncpg connection."""
    import asyncpg

    crypto = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
    pending: list[tuple[str, str, asyncio.Future[None]]] = []
    state: dict[str, Any] = {"writing": False}

    async def write() -> None:
        try:
            while pending:
                batch = pending[:]
                del pending[:]
                await state["conn"].fetch(FLOOR_INSERT, [m for m, _, _ in batch], [utcnow()] * len(batch),
                                          [p for _, p, _ in batch])
                for _, _, done in batch:
                    done.set_result(None)
        finally:
            state["writing"] = False

    async def callback(request: web.Request) -> web.Response:
        q = request.query
        body = await request.read()
        try:
            plain = crypto.decrypt_message(body.decode("utf-8"), q["msg_signature"], q["timestamp"], q["nonce"])
        except (InvalidSignatureException, InvalidCorpIdException):
            return web.Response(status=403)
        done = asyncio.get_running_loop().create_future()
        pending.append((q["nonce"], json.dumps({"xml": plain}), done))
        if not state["writing"]:  # one batch at a time; what arrives meanwhile goes in the next
            state["writing"] = True
            asyncio.ensure_future(write())
        await done
        return web.Response(text="")

    async def connect(app: web.Application) -> None:
        state["conn"] = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
        await state["conn"].execute(f"CREATE TABLE IF NOT EXISTS {FLOOR_TABLE} (message_id text PRIMARY KEY, "
                                    "received_at timestamptz NOT NULL, payload json)")

    async def close(app: web.Application) -> None:
        await state["conn"].close()

    app = web.Application()
    app.on_startup.append(connect)
    app.on_cleanup.append(close)
    app.router.add_post(PATH, callback)
    return app


def full_app(db_url: str, fake_base: str) -> web.Application:
    from bot.app import create_app
    from config.settings import Settings, WecomSettings

    settings = Settings(
        database_url=db_url,
        wecom=WecomSettings(corp_id=CORP_ID, agent_id=FakeWeCom().agent_id, secret=SECRET, token=TOKEN,
                            aes_key=AES_KEY, api_base=fake_base),
    )
    return create_app(settings)  # deliver=True: the outbox dispatcher runs, as under `orderbot serve`


async def serve_kind(kind: str, db_url: str, fake_base: str, profile_out: str) -> None:
    apps = {"full": lambda: full_app(db_url, fake_base), "floor": lambda: floor_app(db_url), "bare": bare_app}
    await serve(apps[kind](), profile_out)


# -- the client (this process) --------------------------------------------------------------------


async def start_server(kind: str, db_url: str = "", fake_base: str = "", profile_out: str = "") -> ServerProcess:
    return await ServerProcess.start(
        [__file__, "--serve", kind, "--db-url", db_url, "--fake-base", fake_base, "--profile-out", profile_out],
        what=f"{kind} server",
    )


@dataclass
class Messages:
    """Signed callbacks, each with its own MsgId; 3 of 4 ask for an order's status, 1 of 4 for help."""

    users: list[str]
    orders: list[str]
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(7_000_000_000_000_000_001))

    def prepare(self, base: str, count: int) -> list[Prepared]:
        crypto_now = int(time.time())
        url = f"{base}{PATH}"
        out: list[Prepared] = []
        for i in range(count):
            msg_id = next(self._ids)
            user = self.users[i % len(self.users)]
            text = "帮助" if i % 4 == 3 else f"查询 {self.orders[i % len(self.orders)]}"
            xml = text_xml(user, text, str(msg_id), crypto_now, corp_id=CORP_ID)
            query, body = sign_callback(TOKEN, AES_KEY, CORP_ID, xml, crypto_now, f"n{msg_id % 10**9}")
            out.append((URL(f"{url}?{urlencode(query)}", encoded=True), body))
        return out


HEADERS = {"Content-Type": "text/xml"}


async def post(session: aiohttp.ClientSession, req: Prepared) -> int:
    async with session.post(req[0], data=req[1], headers=HEADERS) as response:
        await response.read()
        return response.status


@dataclass
class ClosedLoop:
    requests: int
    elapsed_s: float
    statuses: Counter[int]
    server_cpu_s: float

    @property
    def per_s(self) -> float:
        return self.requests / self.elapsed_s


async def closed_loop(server: ServerProcess, reqs: list[Prepared], senders: int) -> ClosedLoop:
    statuses: Counter[int] = Counter()
    queue = iter(reqs)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=senders)) as session:

        async def sender() -> None:
            for req in queue:  # one shared iterator: each request is sent once
                statuses[await post(session, req)] += 1

        cpu0, t0 = server.cpu_s(), time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(senders)))
        elapsed = time.perf_counter() - t0
    return ClosedLoop(len(reqs), elapsed, statuses, server.cpu_s() - cpu0)


@dataclass
class OpenLoop:
    latencies_ms: list[float]  # answer time measured from when the request was due (includes client lag)
    service_ms: list[float]  # answer time measured from when the client actually sent it
    statuses: Counter[int]
    elapsed_s: float
    server_cpu_s: float

    def pct(self, values: list[float], q: float) -> float:
        return pct(values, q)


async def open_loop(server: ServerProcess, reqs: list[Prepared], rate: float) -> OpenLoop:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    service: list[float] = []
    statuses: Counter[int] = Counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(req: Prepared, due: float) -> None:
            sent = loop.time()
            statuses[await post(session, req)] += 1
            done = loop.time()
            latencies.append((done - due) * 1e3)
            service.append((done - sent) * 1e3)

        tasks: list[asyncio.Task[None]] = []
        cpu0 = server.cpu_s()
        start = loop.time() + 0.05
        for i, req in enumerate(reqs):
            due = start + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(req, due)))
        await asyncio.gather(*tasks)
        elapsed = loop.time() - start
    return OpenLoop(latencies, service, statuses, elapsed, server.cpu_s() - cpu0)


# -- the database ---------------------------------------------------------------------------------


async def seed(url: str, users: int, orders: int) -> tuple[list[str], list[str]]:
    """Demo staff (warehouse, supervisors, service, a manager) and paid orders allocated to SH01."""
    db = Database(url)
    try:
        bus = build_bus(db, Deps())
        roles = ("warehouse", "warehouse", "warehouse", "supervisor", "service", "manager")
        staff = [User(f"u{i:04d}", f"员工{i:04d}", frozenset({roles[i % len(roles)]}), "SH01", f"u{i:04d}")
                 for i in range(users)]
        async with UnitOfWork(db) as uow:
            for user in staff:
                await uow.users.upsert(user, utcnow())
            await uow.commit()
        await bus.handle(c.SetStock("SH01", "BP-001", orders * 2 + 10, by="bench", via="api"))
        order_nos = []
        for i in range(orders):
            order, _ = await bus.handle(c.CreateOrder(
                channel="douyin", external_id=f"DY{i:05d}", customer_id=f"C{i % 20}", customer_name="浦东4S店",
                customer_phone="13800000000", address="上海市浦东新区张杨路500号", store="SH01", paid=True,
                lines=(c.LineInput("BP-001", 1, 19_900, "刹车片"),), by="api", via="api",
            ))
            order_nos.append(str(order.order_no))
        async with db.engine.begin() as conn:  # the orders' pushes to the store's staff are not measured here
            await conn.execute(delete(t.outbox))
        return [u.userid for u in staff], order_nos
    finally:
        await db.dispose()


async def backlog(db: Database) -> tuple[int, int]:
    """(inbox messages not processed yet, outbox rows due and not delivered), in one statement: it is polled."""
    unprocessed = select(func.count()).where(t.inbound_messages.c.processed_at.is_(None)).scalar_subquery()
    pending = select(func.count()).where(
        t.outbox.c.status == "pending", t.outbox.c.next_attempt_at <= utcnow()).scalar_subquery()
    async with db.engine.connect() as conn:
        row = (await conn.execute(select(unprocessed, pending))).one()
    return int(row[0]), int(row[1])


async def delivered(db: Database) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).where(t.outbox.c.status == "delivered"))).scalar_one())


@dataclass
class CatchUp:
    """The background work left after the acknowledgements: how long it took, and the server CPU it used."""

    seconds: float
    messages: int  # messages not processed yet when the acknowledgements ended
    server_cpu_s: float

    @property
    def cpu_ms_per_message(self) -> float:
        return self.server_cpu_s / self.messages * 1e3 if self.messages else float("nan")


async def caught_up(db: Database, server: ServerProcess, timeout_s: float = 300) -> CatchUp:
    """Until every stored message is processed and every due reply delivered (polled every 0.1 s)."""
    cpu0, t0 = server.cpu_s(), time.perf_counter()
    left = (await backlog(db))[0]
    while time.perf_counter() - t0 < timeout_s:
        if await backlog(db) == (0, 0):
            return CatchUp(time.perf_counter() - t0, left, server.cpu_s() - cpu0)
        await asyncio.sleep(0.1)
    return CatchUp(float("inf"), left, server.cpu_s() - cpu0)


# -- the run --------------------------------------------------------------------------------------


async def rounds_against(server: ServerProcess, messages: Messages, args: argparse.Namespace) -> list[ClosedLoop]:
    """The closed-loop rounds against a server started for them (then stopped)."""
    try:
        await closed_loop(server, messages.prepare(server.base, args.warmup), args.senders)
        return [await closed_loop(server, messages.prepare(server.base, args.requests), args.senders)
                for _ in range(args.rounds)]
    finally:
        await server.stop()


def median_run(runs: list[Any]) -> Any:
    """The bare endpoint's figure swings ±30 % run to run (the client is the limit): compare medians."""
    return sorted(runs, key=lambda r: r.per_s)[len(runs) // 2]


async def run(url: str, args: argparse.Namespace) -> None:
    users, orders = await seed(url, args.users, args.orders)
    messages = Messages(users, orders)
    profile_out = args.profile_out
    db = Database(url)
    try:
        async with FakeWeCom(corp_id=CORP_ID, secret=SECRET) as fake:
            server = await start_server("full", url, fake.base_url, profile_out)
            try:
                await closed_loop(server, messages.prepare(server.base, args.warmup), args.senders)
                await caught_up(db, server)
                fulls = [await closed_loop(server, messages.prepare(server.base, args.requests), args.senders)
                         for _ in range(args.rounds)]  # back to back: the backlog grows, acks must stay fast
                full = median_run(fulls)
                full_catch_up = await caught_up(db, server)
                replies_after_a = await delivered(db)
                n_open = int(args.rate * args.duration)
                opened = await open_loop(server, messages.prepare(server.base, n_open), args.rate)
                open_catch_up = await caught_up(db, server)
            finally:
                await server.stop()
            replies, shown = await delivered(db), len(fake.messages)
        bares = await rounds_against(await start_server("bare"), messages, args)
        bare = median_run(bares)
        floors = [] if args.db != "postgres" else await rounds_against(await start_server("floor", url), messages, args)
    finally:
        await db.dispose()

    ratio = full.per_s / bare.per_s
    rounds = lambda runs: ", ".join(f"{r.per_s:,.0f}" for r in runs)  # noqa: E731
    p50, p99 = opened.pct(opened.latencies_ms, 0.50), opened.pct(opened.latencies_ms, 0.99)
    sent_total = args.warmup + args.rounds * args.requests + n_open
    print(f"database: {args.db}; {args.users} demo users, {args.orders} paid orders; "
          f"messages: 3/4 “查询 OB…”, 1/4 “帮助”, each with its own MsgId")
    print(f"(a) full app, closed loop, {args.senders} senders: {full.per_s:,.0f} req/s "
          f"({full.requests:,} requests in {full.elapsed_s:.2f} s; statuses {dict(full.statuses)}; "
          f"server CPU {full.server_cpu_s / full.elapsed_s:.0%} of one core, "
          f"{full.server_cpu_s / full.requests * 1e3:.2f} ms CPU/request incl. background work done meanwhile)")
    print(f"    background processing caught up {full_catch_up.seconds:.2f} s after the last acknowledgement "
          f"→ {full.requests / (full.elapsed_s + full_catch_up.seconds):,.0f} messages/s processed end to end; "
          f"{replies_after_a:,} outbox rows delivered so far; while catching up, server CPU "
          f"{full_catch_up.cpu_ms_per_message:.2f} ms per message left ({full_catch_up.messages:,}: processed, "
          f"answered, delivered)")
    print(f"(b) bare wechatpy decrypt endpoint, same load: {bare.per_s:,.0f} req/s "
          f"({bare.requests:,} requests in {bare.elapsed_s:.2f} s; statuses {dict(bare.statuses)}; "
          f"server CPU {bare.server_cpu_s / bare.requests * 1e3:.2f} ms/request)")
    print(f"    rounds (req/s): full {rounds(fulls)}; bare {rounds(bares)}; the medians are compared")
    print(f"    ratio full / bare: {ratio:.2f} (target ≥ 0.5: {'met' if ratio >= 0.5 else 'MISSED'})")
    print(f"(c) full app, open loop at {args.rate:g} msg/s for {opened.elapsed_s:.1f} s "
          f"({len(opened.latencies_ms):,} messages; statuses {dict(opened.statuses)}): "
          f"acknowledgement p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(opened.latencies_ms):.1f} ms "
          f"(target p99 < 50 ms: {'met' if p99 < 50 else 'MISSED'}); measured from send: "
          f"p50 {opened.pct(opened.service_ms, 0.5):.1f} ms, p99 {opened.pct(opened.service_ms, 0.99):.1f} ms; "
          f"server CPU {opened.server_cpu_s / opened.elapsed_s:.0%} of one core; "
          f"caught up {open_catch_up.seconds:.2f} s after the last send")
    print(f"    {sent_total:,} messages sent to the full app in all; {replies:,} replies delivered through the outbox when "
          f"it stopped (a person's replies past the per-minute cap wait for the next minute, merged into a digest), "
          f"{shown:,} of them shown by FakeWeCom (its duplicate check folds a repeated identical reply to one user)")
    if floors:
        floor = median_run(floors)
        print(f"(d) durable floor (bare endpoint + each message INSERTed before its answer, group commit on raw "
              f"asyncpg), same load: {floor.per_s:,.0f} req/s (rounds {rounds(floors)}; server CPU "
              f"{floor.server_cpu_s / floor.requests * 1e3:.2f} ms/request); floor / bare {floor.per_s / bare.per_s:.2f}, "
              f"full / floor {full.per_s / floor.per_s:.2f}")
    if profile_out:
        print(f"    cProfile of the full-app server: {profile_out} (and .prof)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--senders", type=int, default=32, help="concurrent senders in the closed loop")
    parser.add_argument("--requests", type=int, default=3000, help="measured requests per closed loop")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="closed-loop rounds per server; medians compared")
    parser.add_argument("--rate", type=float, default=200, help="open-loop messages per second")
    parser.add_argument("--duration", type=float, default=10, help="open-loop seconds")
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--orders", type=int, default=50)
    parser.add_argument("--profile", default="", help="directory for a cProfile profile of the full app")
    parser.add_argument("--serve", choices=["full", "bare", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--db-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--fake-base", default="", help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve_kind(args.serve, args.db_url, args.fake_base, args.profile_out))
        return
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        args.profile_out = str(Path(args.profile).resolve() / "full_app.txt")
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable); Python {sys.version.split()[0]}, "
          f"aiohttp {aiohttp.__version__}; server in a subprocess, client + FakeWeCom in this process")
    with database(args.db) as url:
        asyncio.run(run(url, args))


if __name__ == "__main__":
    main()
