"""A WeCom outage longer than the old retry budget, against `orderbot serve` as a real process on PostgreSQL.

Time is compressed through settings, not slept away: back-offs of 0.05–0.5 s and a breaker cool-down of
0.5–1 s make the old budget (8 attempts) last about 2.5 s; WeCom then stays down for 8 s. The retry window
keeps its default (6 h). Bounded: about 15 s, with generous deadlines for a loaded machine.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from domain.chat import Button, Card, to_payload
from domain.clock import utcnow
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from integrations.fakes.wecom import FakeWeCom
from tests.integration.helpers import rows

CORP_ID, SECRET, AGENT_ID = "ww-outage", "outage-secret", 1000012
SERVE = "import sys\nfrom bot.cli import main\nsys.exit(main(['serve']))\n"
COMPRESSED = {
    "ORDERBOT_DELIVERY__BASE_BACKOFF_S": "0.05", "ORDERBOT_DELIVERY__MAX_BACKOFF_S": "0.5",
    "ORDERBOT_DELIVERY__BREAKER_COOL_S": "0.5", "ORDERBOT_DELIVERY__BREAKER_MAX_COOL_S": "1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def serving(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[FakeWeCom, Path]]:
    """`orderbot serve` on the test's database, sending to a fake WeCom in this process; its log in a file."""
    port, log_path = free_port(), tmp_path / "serve.log"
    async with FakeWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID) as fake:
        env = {**os.environ, **COMPRESSED, "ORDERBOT_DATABASE_URL": db_url, "ORDERBOT_HTTP__PORT": str(port),
               "ORDERBOT_WECOM__CORP_ID": CORP_ID, "ORDERBOT_WECOM__SECRET": SECRET,
               "ORDERBOT_WECOM__AGENT_ID": str(AGENT_ID), "ORDERBOT_WECOM__API_BASE": fake.base_url,
               "ORDERBOT_LOG_LEVEL": "WARNING"}
        env.pop("ORDERBOT_CONFIG", None)
        with log_path.open("wb") as log:
            proc = await asyncio.create_subprocess_exec(sys.executable, "-c", SERVE, env=env, stderr=log, stdout=log)
            try:
                async with httpx.AsyncClient() as http:
                    for _ in range(600):
                        try:
                            if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                                break
                        except httpx.TransportError:
                            pass
                        await asyncio.sleep(0.1)
                    else:
                        pytest.fail(f"orderbot serve did not come up: {log_path.read_text()}")
                yield fake, log_path
            finally:
                proc.kill()
                await proc.wait()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_an_outage_longer_than_the_old_budget_loses_nothing(
    serving: tuple[FakeWeCom, Path], db_url: str
) -> None:
    fake, log_path = serving
    db = Database(db_url)
    try:
        fake.go_down()
        cards = [Card("拣货任务", f"订单 OB{n:08d} 待拣货", f"pick-OB{n:08d}",
                      buttons=(Button(f"pick OB{n:08d}", "开始拣货"),)) for n in range(20)]
        async with UnitOfWork(db) as uow:
            await uow.enqueue_many([{"channel": "chat", "kind": "card", "recipient": f"wh{n % 4}",
                                     "payload": to_payload(card)} for n, card in enumerate(cards)], at=utcnow())
            await uow.commit()
        await asyncio.sleep(8)  # WeCom down for ~3x the old budget
        during = await rows(db, t.outbox)
        fake.go_down(False)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(r["status"] == "delivered" for r in await rows(db, t.outbox)):
                break
            await asyncio.sleep(0.2)
        after = await rows(db, t.outbox)
    finally:
        await db.dispose()

    assert {r["status"] for r in during} == {"pending"}
    assert {r["status"] for r in after} == {"delivered"}
    shown = [m["template_card"]["task_id"] for m in fake.messages]
    assert sorted(shown) == sorted(card.task_id for card in cards)  # every card, once
    for k in range(4):  # each person's cards in the order they were queued
        assert [s for s in shown if int(s[-2:]) % 4 == k] == [c.task_id for n, c in enumerate(cards) if n % 4 == k]
    log = log_path.read_text()
    assert log.count("looks down") == 1 and log.count("is back") == 1, log
    assert "is dead" not in log and "ERROR" not in log
