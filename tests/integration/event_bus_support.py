"""What the order event bus tests share: a compressed clock, a replayed day of orders, JetStream read-back."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import nats

from domain import commands as c
from handlers.bus import MessageBus
from integrations.db import tables as t
from integrations.db.engine import Database
from tests.integration.helpers import create_cmd, drive, rows, stock

NATS_URL = "nats://127.0.0.1:4222"
SECRET = "test-subscriber-secret-0123456789"


class CompressedClock:
    """Time that passes only when the code under test waits: a minute of back-off takes milliseconds."""

    def __init__(self) -> None:
        self.start = datetime(2026, 2, 6, 8, 0, tzinfo=UTC)
        self.elapsed = 0.0

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def seconds(self) -> float:
        return self.elapsed

    async def wait(self, seconds: float) -> None:
        self.elapsed += seconds
        await asyncio.sleep(0.005)  # let the rest of the test (and the fakes) run


async def replay_day(bus: MessageBus, orders: int, *, seed: int = 11) -> list[str]:
    """A day of orders, interleaved as they would be: most go all the way, some are cancelled, some stop on
    the way (picked, shipped). Returns the order numbers."""
    rng = random.Random(seed)
    await stock(bus, "SH01", "BP-001", 10 * orders)
    created = [await bus.handle(create_cmd(f"DY{n:05d}")) for n in range(orders)]
    numbers = [order.order_no for order, _ in created]

    async def one(order_no: str, fate: int) -> None:
        await asyncio.sleep(rng.random() * 0.01)
        if fate == 0:
            await bus.handle(c.FireOrderTrigger(order_no, "cancel", by="sup1", via="wecom"))
            return
        await drive(bus, order_no, "pick", "check")
        if fate == 1:
            return
        await drive(bus, order_no, "pack")
        await drive(bus, order_no, "ship", waybill=f"SF{order_no[2:]}")
        if fate == 2:
            return
        await drive(bus, order_no, "pick_up", "deliver", "complete")

    await asyncio.gather(*(one(no, rng.randrange(5)) for no in numbers))
    return numbers


async def stored_events(db: Database) -> list[dict[str, Any]]:
    return await rows(db, t.events)


def assert_in_order_per_order(events: list[dict[str, Any]]) -> None:
    """Each order's state changes form one chain (each starts where the one before ended), after its creation."""
    by_order: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        if event["order_no"]:
            by_order.setdefault(event["order_no"], []).append(event)
    assert by_order
    for order_no, seen in by_order.items():
        assert seen[0]["type"] == "order.created", (order_no, [e["type"] for e in seen])
        state = seen[0]["data"]["state"]
        for event in seen[1:]:
            if event["type"] == "order.state_changed" and not event["data"]["part_of_creation"]:
                assert event["data"]["from_state"] == state, (order_no, [e["type"] for e in seen])
                state = event["data"]["to_state"]


@asynccontextmanager
async def jetstream_stream() -> AsyncIterator[tuple[str, str, Any]]:
    """A stream name and subject prefix of this test's own (two streams may not share subjects, and another
    run may be going on), deleted afterwards; the publisher makes the stream on first use."""
    tag = uuid.uuid4().hex[:10]
    name, prefix = f"ORDERBOT_TEST_{tag.upper()}", f"t{tag}.orderbot.orders"
    nc = await nats.connect(NATS_URL, connect_timeout=5)
    try:
        yield name, prefix, nc.jetstream()
    finally:
        try:
            await nc.jetstream().delete_stream(name)
        except Exception:
            pass
        await nc.close()


async def read_stream(js: Any, stream: str) -> list[Any]:
    """Every message the stream holds, in stream order."""
    info = await js.stream_info(stream)
    return [await js.get_msg(stream, seq) for seq in range(info.state.first_seq, info.state.last_seq + 1)]
