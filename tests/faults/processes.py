"""Real processes for the fault tests: `orderbot serve` in a subprocess on PostgreSQL, signed WeCom callbacks
sent to it over HTTP, the fake WeCom in the test process, and PostgreSQL-side faults (a table lock that
stalls processing, pg_terminate_backend of the server's connections).

Everything is bounded in time: a helper that waits polls with a deadline and fails with what it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from domain.clock import utcnow
from domain.users import User
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from integrations.fakes.wecom import FakeWeCom
from integrations.fakes.wecom_signer import sign_callback, text_xml

TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
CORP_ID = "ww1436e0e65a779aee"
SECRET = "fault-secret"
ROOT = Path(__file__).resolve().parents[2]
START_S = 90.0  # a cold `orderbot serve` on a loaded 2-core machine


def dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One `orderbot serve` replica; its log goes to a file the failing test prints."""

    proc: asyncio.subprocess.Process
    base: str
    log: Path

    @classmethod
    async def start(cls, db_url: str, fake: FakeWeCom, log: Path, **settings: str) -> Server:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERBOT_")}
        env.update({
            "ORDERBOT_DATABASE_URL": db_url, "ORDERBOT_HTTP__PORT": str(port), "ORDERBOT_LOG_LEVEL": "INFO",
            "ORDERBOT_WECOM__CORP_ID": CORP_ID, "ORDERBOT_WECOM__AGENT_ID": str(fake.agent_id),
            "ORDERBOT_WECOM__SECRET": SECRET, "ORDERBOT_WECOM__TOKEN": TOKEN, "ORDERBOT_WECOM__AES_KEY": AES_KEY,
            "ORDERBOT_WECOM__API_BASE": fake.base_url,
            # the recovery settings, compressed: a lapsed lease is swept within a few seconds
            "ORDERBOT_INBOX__SWEEP_INTERVAL_S": "0.5", "ORDERBOT_INBOX__LEASE_S": "3",
            "ORDERBOT_INBOX__RETRY_DELAY_S": "0.5",
        })
        env.update({f"ORDERBOT_{k.upper()}": v for k, v in settings.items()})
        with log.open("ab") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.cli", "serve", cwd=ROOT, env=env, stdout=out, stderr=out,
            )
        server = cls(proc, f"http://127.0.0.1:{port}", log)
        await server._until_healthy()
        return server

    async def _until_healthy(self) -> None:
        end = time.monotonic() + START_S
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < end:
                if self.proc.returncode is not None:
                    break
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(f"{self.base}/healthz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.2)
        await self.kill()
        raise AssertionError(f"orderbot serve did not come up:\n{self.log.read_text(errors='replace')[-3000:]}")

    async def kill(self) -> None:
        """SIGKILL: no clean-up, no goodbye: what a crash or an OOM kill does."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                await self.kill()


@contextlib.asynccontextmanager
async def servers(db_url: str, fake: FakeWeCom, tmp: Path) -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    """Start replicas by name (and settings); every one still running is stopped at the end, whatever happened."""
    started: list[Server] = []

    async def start(name: str, **settings: str) -> Server:
        server = await Server.start(db_url, fake, tmp / f"{name}.log", **settings)
        started.append(server)
        return server

    try:
        yield start
    finally:
        await asyncio.gather(*(s.stop() for s in started), return_exceptions=True)


async def add_users(db_url: str, userids: list[str]) -> None:
    db = Database(db_url)
    try:
        async with UnitOfWork(db) as uow:
            for userid in userids:
                await uow.users.upsert(User(userid, userid, frozenset({"warehouse"}), "SH01", userid), utcnow())
            await uow.commit()
    finally:
        await db.dispose()


async def send_text(session: aiohttp.ClientSession, base: str, user: str, text: str, msg_id: str) -> int:
    """One signed callback, re-sent on anything but 200 as WeCom does (it retries a callback three times)."""
    now = int(time.time())
    query, body = sign_callback(TOKEN, AES_KEY, CORP_ID, text_xml(user, text, msg_id, now, corp_id=CORP_ID), now,
                                f"n{msg_id}")
    status = 0
    for _ in range(4):
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with session.post(f"{base}/wecom/callback", params=query, data=body,
                                    timeout=aiohttp.ClientTimeout(total=10)) as response:
                status = response.status
                if status == 200:
                    return status
        await asyncio.sleep(0.3)
    return status


async def send_all(jobs: list[tuple[str, str, str]], concurrency: int = 16) -> list[int]:
    """(base URL, user, message id) each saying 帮助; the statuses in order."""
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:

        async def one(base: str, user: str, msg_id: str) -> int:
            async with gate:
                return await send_text(session, base, user, "帮助", msg_id)

        return list(await asyncio.gather(*(one(*job) for job in jobs)))


def answers(fake: FakeWeCom) -> Counter[str]:
    """Messages each person was shown (the fake, like WeCom, hides a duplicate-checked re-send)."""
    return Counter(str(m.get("touser")) for m in fake.messages)


async def settled(db_url: str, fake: FakeWeCom, users: list[str], deadline_s: float, logs: list[Path]) -> Counter[str]:
    """Poll until every user was answered and nothing is left in the inbox or the outbox; then the counts."""
    end = time.monotonic() + deadline_s
    conn = None
    left: tuple[Any, ...] = ()
    while time.monotonic() < end:
        try:
            conn = conn or await asyncpg.connect(dsn(db_url))
            left = tuple(await conn.fetchrow(
                "SELECT (SELECT count(*) FROM inbound_messages WHERE processed_at IS NULL),"
                " (SELECT count(*) FROM inbound_messages WHERE parked_at IS NOT NULL),"
                " (SELECT count(*) FROM outbox WHERE status <> 'delivered')"
            ))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            conn = None  # cut by the test itself
            await asyncio.sleep(0.3)
            continue
        got = answers(fake)
        if left == (0, 0, 0) and all(got[u] >= 1 for u in users):
            await conn.close()
            return got
        await asyncio.sleep(0.3)
    if conn is not None:
        await conn.close()
    got = answers(fake)
    tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2500:]}" for p in logs if p.exists())
    raise AssertionError(
        f"not settled in {deadline_s:.0f} s: unprocessed/parked/outbox pending = {left}, "
        f"unanswered = {[u for u in users if not got[u]][:20]}\n{tails}"
    )


@contextlib.asynccontextmanager
async def processing_stalled(db_url: str) -> AsyncIterator[int]:
    """Every unit of work that handles a chat message waits (it looks the sender up in `users`, locked here),
    while acknowledgements go on (they only insert into the inbox). Yields the lock holder's backend pid."""
    conn = await asyncpg.connect(dsn(db_url))
    tx = conn.transaction()
    await tx.start()
    await conn.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
    try:
        yield conn.get_server_pid()
    finally:
        await tx.rollback()
        await conn.close()


async def cut_connections(db_url: str, times: int, every_s: float, spare: int = 0) -> int:
    """pg_terminate_backend on every other connection to the database (but `spare`), `times` times; how many."""
    name = db_url.rsplit("/", 1)[1]
    cut = 0
    conn = await asyncpg.connect(dsn(db_url))
    try:
        for _ in range(times):
            cut += len(await conn.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid() AND pid <> $2",
                name, spare,
            ))
            await asyncio.sleep(every_s)
    finally:
        await conn.close()
    return cut
