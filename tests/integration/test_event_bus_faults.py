"""The order event bus as real processes on PostgreSQL: `orderbot serve` publishes a burst of orders made
through its REST API to a webhook subscriber that is down for a minute (time compressed 20× through the
retry settings) and to NATS JetStream, is SIGKILLed while it delivers, and a new process finishes the job:
every event arrives, in order per order, none missing; JetStream holds each exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from integrations.db.engine import Database
from integrations.fakes.subscriber import FakeSubscriber
from tests.conftest import _truncate_pg as truncate_pg
from tests.integration.event_bus_support import (
    NATS_URL,
    SECRET,
    assert_in_order_per_order,
    jetstream_stream,
    read_stream,
    stored_events,
)

TOKEN = "fault-test-token-0123456789"
SCALE = 20  # a minute of outage is 3 s here; back-off settings are divided alike
DEADLINE_S = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_for(condition: Any, what: str, deadline_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not await condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.1)


class Serve:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.port = int(env["ORDERBOT_HTTP__PORT"])
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "from bot.cli import main; raise SystemExit(main(['serve']))",
                env=self.env, stdout=out, stderr=asyncio.subprocess.STDOUT,
            )

        async def healthy() -> bool:
            assert self.proc is not None and self.proc.returncode is None, self.log.read_text()[-2000:]
            try:
                async with httpx.AsyncClient(timeout=2) as http:
                    return (await http.get(f"http://127.0.0.1:{self.port}/healthz")).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_for(healthy, "orderbot serve to answer /healthz", 60)

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(self.proc.wait(), timeout=30)


@pytest.fixture
async def pg_db(pg_url: str) -> AsyncIterator[Database]:
    await truncate_pg(pg_url)
    database = Database(pg_url)
    yield database
    await database.dispose()


async def place_orders(base: str, count: int) -> list[str]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as api:
        assert (await api.put("/api/v1/inventory/SH01/BP-001", json={"on_hand": 10 * count})).status_code == 200
        numbers = []
        for n in range(count):
            response = await api.post("/api/v1/orders", json={
                "channel": "douyin", "external_id": f"DYF{n:04d}", "address": "上海市浦东新区张杨路500号",
                "customer": {"id": "C-4S-01", "name": "浦东4S店", "phone": "13800000000"}, "store": "SH01",
                "paid": True, "lines": [{"sku": "BP-001", "name": "刹车片", "qty": 1, "unit_price": "199.00"}]})
            assert response.status_code == 201, response.text
            numbers.append(response.json()["order_no"])

        async def lifecycle(order_no: str) -> None:
            for trigger in ("pick", "check", "pack", "ship", "pick_up", "deliver"):
                body = {"trigger": trigger, "by": "wh1", **({"waybill": f"SF{order_no[2:]}"} if trigger == "ship" else {})}
                response = await api.post(f"/api/v1/orders/{order_no}/trigger", json=body)
                assert response.status_code == 200, response.text

        await asyncio.gather(*(lifecycle(no) for no in numbers))
        return numbers


async def test_serve_delivers_every_event_after_an_outage_of_a_minute_and_a_sigkill(
    pg_url: str, pg_db: Database, tmp_path: Path
) -> None:
    async with FakeSubscriber(SECRET) as hook, jetstream_stream() as (stream, prefix, js):
        env = {**os.environ, "ORDERBOT_DATABASE_URL": pg_url, "ORDERBOT_HTTP__PORT": str(free_port()),
               "ORDERBOT_API__TOKEN": TOKEN, "ORDERBOT_LOG_LEVEL": "INFO",
               "ORDERBOT_EVENTS__SUBSCRIBERS": json.dumps({"planning": {"url": hook.url, "secret": SECRET}}),
               "ORDERBOT_EVENTS__NATS_URL": NATS_URL, "ORDERBOT_EVENTS__NATS_STREAM": stream,
               "ORDERBOT_EVENTS__NATS_SUBJECT_PREFIX": prefix, "ORDERBOT_EVENTS__RETRY_BASE_S": str(1 / SCALE),
               "ORDERBOT_EVENTS__RETRY_MAX_S": str(30 / SCALE), "ORDERBOT_EVENTS__LEASE_S": "2",
               "ORDERBOT_EVENTS__IDLE_S": "0.1", "ORDERBOT_EVENTS__BATCH": "10"}
        env.pop("ORDERBOT_CONFIG", None)
        serve = Serve(env, tmp_path / "serve.log")
        try:
            adding = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "from bot.cli import main; raise SystemExit(main())", "users", "add", "wh1",
                "--name", "王强", "--role", "warehouse", "--store", "SH01", env=env)
            assert await asyncio.wait_for(adding.wait(), timeout=60) == 0
            hook.down_for(60 / SCALE + 60)  # down from before the first event; brought up below
            await serve.start()
            down_since = time.monotonic()
            orders = await place_orders(f"http://127.0.0.1:{serve.port}", 12)
            total = len(await stored_events(pg_db))

            async def turned_away() -> bool:
                return hook.turned_away >= 3 and time.monotonic() - down_since >= 60 / SCALE

            await wait_for(turned_away, "the publisher to retry through a minute of outage")
            hook._queue_stall(0.03, 10_000, "/events")  # slow enough to be killed in the middle of delivering
            hook.up()

            async def some() -> bool:
                return len(hook.events) >= 20

            await wait_for(some, "the first deliveries after the outage")
            await serve.kill()
            hook._path_stalls.clear()
            assert len(hook.events) < total, "everything went out before the kill: nothing was proved"
            await serve.start()

            async def everything() -> bool:
                return len(hook.events) >= total and (await js.stream_info(stream)).state.messages >= total

            await wait_for(everything, "every event at the webhook and in JetStream")
        finally:
            await serve.kill()

        got = hook.events
        assert [e["id"] for e in got] == list(range(1, total + 1))  # each id first arrives after all before it
        assert {e["order_no"] for e in got if e["type"] == "order.created"} == set(orders)
        assert_in_order_per_order(got)
        assert hook.refused_signatures == 0
        messages = await read_stream(js, stream)
        assert [json.loads(m.data)["id"] for m in messages] == list(range(1, total + 1))  # once each
        log = (tmp_path / "serve.log").read_text()
        assert log.count("events to planning are held up") == 1  # one line for the outage, not one per retry
        assert "Traceback" not in log
