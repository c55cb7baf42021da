"""Every acknowledged chat message is answered exactly once, whatever fails: `orderbot serve` as real processes
on PostgreSQL, killed with SIGKILL, cut off from the database, and run as two replicas on one database.

Answers are counted at the fake WeCom per person, one message per person, so a count per person is a count
per MsgId. PostgreSQL only (the production database, and the only one two processes share).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from integrations.fakes.wecom import FakeWeCom
from tests.faults.processes import (
    CORP_ID,
    SECRET,
    add_users,
    answers,
    cut_connections,
    dsn,
    processing_stalled,
    send_all,
    servers,
    settled,
)


@pytest.fixture
def pg(pg_url: str) -> str:
    """The run's PostgreSQL database, emptied (tests/conftest.py)."""
    from tests.conftest import _truncate_pg

    asyncio.run(_truncate_pg(pg_url))
    return pg_url


@pytest.fixture
async def fake() -> Any:
    async with FakeWeCom(corp_id=CORP_ID, secret=SECRET) as fake_wecom:
        yield fake_wecom


async def unprocessed(db_url: str) -> int:
    conn = await asyncpg.connect(dsn(db_url))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM inbound_messages WHERE processed_at IS NULL"))
    finally:
        await conn.close()


async def test_200_acked_then_sigkill_all_answered_exactly_once_after_restart(
    pg: str, fake: FakeWeCom, tmp_path: Path
) -> None:
    users = [f"k{i:03d}" for i in range(200)]
    await add_users(pg, users)
    async with servers(pg, fake, tmp_path) as start:
        first = await start("first")
        async with processing_stalled(pg):
            statuses = await send_all([(first.base, u, f"71{i:04d}") for i, u in enumerate(users)])
            assert statuses == [200] * 200  # acknowledged: WeCom will never send these again
            assert await unprocessed(pg) == 200 and not fake.messages
            await first.kill()
        again = await start("again")
        got = await settled(pg, fake, users, 75, [first.log, again.log])
    assert got == {u: 1 for u in users}


async def test_connections_cut_mid_run_all_40_answered_exactly_once_without_a_restart(
    pg: str, fake: FakeWeCom, tmp_path: Path
) -> None:
    users = [f"c{i:02d}" for i in range(40)]
    await add_users(pg, users)
    async with servers(pg, fake, tmp_path) as start:
        server = await start("only", INBOX__MAX_ATTEMPTS="1")  # a cut that cost a try would park the message
        # the messages' units of work wait on a lock, so the cuts find them under way (and the outbox empty)
        async with processing_stalled(pg) as lock_holder:
            cutting = asyncio.create_task(cut_connections(pg, times=7, every_s=0.5, spare=lock_holder))  # ~3 s
            statuses = await send_all([(server.base, u, f"72{i:04d}") for i, u in enumerate(users)], concurrency=4)
            cut = await cutting
        assert statuses == [200] * 40 and cut > 0
        got = await settled(pg, fake, users, 60, [server.log])
        assert server.proc.returncode is None  # no restart
    assert got == {u: 1 for u in users}


async def test_two_replicas_one_killed_each_message_answered_exactly_once(
    pg: str, fake: FakeWeCom, tmp_path: Path
) -> None:
    """A and B share the callbacks (some re-sent to the other, as WeCom's retry through a load balancer
    would); A dies with its share acknowledged; B and a new replica sweep A's share between them."""
    users = [f"r{i:03d}" for i in range(100)]
    await add_users(pg, users)
    async with servers(pg, fake, tmp_path) as start:
        a, b = await asyncio.gather(start("a"), start("b"))
        jobs = [((a, b)[i % 2].base, u, f"73{i:04d}") for i, u in enumerate(users)]
        retries = [((b, a)[i % 2].base, u, f"73{i:04d}") for i, u in enumerate(users) if i % 5 == 0]
        async with processing_stalled(pg):
            assert await send_all(jobs + retries) == [200] * 120
            await a.kill()
        c = await start("c")
        got = await settled(pg, fake, users, 75, [a.log, b.log, c.log])
        assert b.proc.returncode is None and c.proc.returncode is None
    assert got == {u: 1 for u in users}
    assert sum(answers(fake).values()) == 100
