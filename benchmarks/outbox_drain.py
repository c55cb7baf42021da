"""How long the outbox takes to drain through a WeCom that fails a share of sends and stalls one.

One run: a fresh database (PostgreSQL by default), `orderbot serve` in a SUBPROCESS pointed at a FakeWeCom
running in this process, N messages committed to the outbox at once (spread over P people), a share of the
sends failing at random (errcode -1, 45009, HTTP 500; with --late also "shown, then answered after the client
gave up"), and the first send stalled past the client's 5 s time-out. The clock starts at the commit and
stops when no row is pending. Reported: the drain time, what WeCom showed, what its per-member cap dropped,
repeats, and dead rows.

    .venv/bin/python benchmarks/outbox_drain.py                      # 450 messages, 45 people, 30 % faults
    .venv/bin/python benchmarks/outbox_drain.py --messages 450 --people 45 --faults 0.3 --late --db sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from benchmarks._support import command_line, run_on_database  # noqa: E402
from domain.chat import Reply, to_payload  # noqa: E402
from domain.clock import utcnow  # noqa: E402
from integrations.db import tables as t  # noqa: E402
from integrations.db.engine import Database  # noqa: E402
from integrations.db.uow import UnitOfWork  # noqa: E402
from integrations.fakes.wecom import SEND_PATH, FakeWeCom  # noqa: E402

CORP_ID, SECRET, AGENT_ID = "ww-drain", "drain-secret", 1000002

SERVE = """
import sys
from bot.cli import main
sys.exit(main(["serve"]))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_serve(url: str, fake: FakeWeCom, port: int) -> asyncio.subprocess.Process:
    env = {
        **os.environ, "ORDERBOT_DATABASE_URL": url, "ORDERBOT_HTTP__PORT": str(port),
        "ORDERBOT_WECOM__CORP_ID": CORP_ID, "ORDERBOT_WECOM__SECRET": SECRET,
        "ORDERBOT_WECOM__AGENT_ID": str(AGENT_ID), "ORDERBOT_WECOM__API_BASE": fake.base_url,
        "ORDERBOT_LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", SERVE, env=env)
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    raise RuntimeError("orderbot serve did not come up")


async def run(url: str, args: argparse.Namespace) -> None:
    db = Database(url)
    async with FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID) as fake:
        proc = await start_serve(url, fake, free_port())
        try:
            kinds = ("busy", "throttled", "http500") + (("shown_then_late",) if args.late else ())
            fake.chaos(args.faults, seed=args.seed, kinds=kinds, late_s=8.0)
            fake.stall_next(30.0, path=SEND_PATH)  # the first send is answered long after the 5 s time-out
            texts = [f"任务#{i:04d}" for i in range(args.messages)]
            async with UnitOfWork(db) as uow:
                now = utcnow()
                await uow.enqueue_many([
                    {"channel": "chat", "kind": "message", "recipient": f"p{i % args.people:03d}",
                     "payload": to_payload(Reply(text))} for i, text in enumerate(texts)
                ], at=now)
                await uow.commit()
            started = time.perf_counter()
            first_all_shown = None
            while time.perf_counter() - started < args.timeout:
                shown = {m["text"]["content"] for m in fake.messages if m["msgtype"] == "text"}
                if first_all_shown is None and all(text in shown for text in texts):
                    first_all_shown = time.perf_counter() - started
                async with db.engine.connect() as conn:
                    pending = (await conn.execute(
                        select(func.count()).where(t.outbox.c.status == "pending"))).scalar_one()
                if not pending:
                    break
                await asyncio.sleep(0.2)
            drained = time.perf_counter() - started
            async with db.engine.connect() as conn:
                statuses = dict((await conn.execute(
                    select(t.outbox.c.status, func.count()).group_by(t.outbox.c.status))).all())
            contents = Counter(m["text"]["content"] for m in fake.messages if m["msgtype"] == "text")
            missing = [text for text in texts if not any(text in c for c in contents)]
            print(f"messages={args.messages} people={args.people} faults={args.faults:.0%} late={args.late} "
                  f"db={args.db}")
            print(f"drained in {drained:.1f} s (every message shown after "
                  f"{first_all_shown if first_all_shown is None else round(first_all_shown, 1)} s); "
                  f"rows by status {statuses}")
            print(f"WeCom showed {len(fake.messages)} messages, dropped {len(fake.dropped)} over the per-member cap, "
                  f"{sum(n - 1 for n in contents.values())} repeats, {len(missing)} never shown")
        finally:
            proc.terminate()
            await proc.wait()
            await db.dispose()


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--messages", type=int, default=450)
    parser.add_argument("--people", type=int, default=45)
    parser.add_argument("--faults", type=float, default=0.3)
    parser.add_argument("--late", action="store_true", help="also 'shown, then answered too late' faults")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--timeout", type=float, default=300)
    run_on_database(parser.parse_args(), run)


if __name__ == "__main__":
    main()
