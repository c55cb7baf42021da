"""The order event bus on a real database (SQLite and PostgreSQL), a real NATS JetStream and a fake webhook
subscriber: every event of a replayed day arrives, in order per order, none missing after the subscriber was
down for a minute (compressed clock), each delivery's signature verifiable as the README says."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event, make_url

from domain import commands as c
from domain.errors import IllegalTransition
from domain.event_wire import WireEvent
from handlers.bootstrap import build_bus
from handlers.bus import Deps, MessageBus
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.events import EventStore
from integrations.db.uow import UnitOfWork
from integrations.events.jetstream import JetStreamSubscriber
from integrations.events.publisher import EventPublisher, drain
from integrations.events.webhook import WebhookSubscriber
from integrations.fakes.subscriber import FakeSubscriber
from tests.conftest import _truncate_pg as truncate_pg
from tests.integration.event_bus_support import (
    NATS_URL,
    SECRET,
    CompressedClock,
    assert_in_order_per_order,
    jetstream_stream,
    read_stream,
    replay_day,
    stored_events,
)
from tests.integration.helpers import create_cmd, rows, stock

DEADLINE_S = 120.0  # generous: a loaded 2-core machine


async def until(condition: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_day_reaches_the_webhook_and_jetstream_in_order_after_the_subscriber_was_down_a_minute(
    bus: MessageBus, db: Database
) -> None:
    clock = CompressedClock()
    async with FakeSubscriber(SECRET, clock=clock.seconds) as hook, jetstream_stream() as (stream, prefix, js), \
            httpx.AsyncClient(timeout=5) as http:
        jet = JetStreamSubscriber(NATS_URL, stream, prefix=prefix)
        publisher = EventPublisher(
            EventStore(db), [WebhookSubscriber("planning", hook.url, SECRET, http), jet], holder="replica-a",
            clock=clock.now, wait=clock.wait, batch=25, idle_s=0.5, retry_max_s=30,
        )
        hook.down_for(60)
        stop = asyncio.Event()
        running = asyncio.create_task(publisher.run_forever(stop))
        try:
            orders = await replay_day(bus, 40)  # published while the day goes on
            stored = await stored_events(db)
            await until(lambda: len(hook.events) >= len(stored), "the webhook to have every event")
            info_deadline = time.monotonic() + DEADLINE_S
            while (await js.stream_info(stream)).state.messages < len(stored):
                assert time.monotonic() < info_deadline, "JetStream did not get every event"
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await asyncio.wait_for(running, timeout=30)

        # the subscriber was really down for a minute of the publisher's time, and nothing was lost meanwhile
        assert hook.turned_away >= 3 and clock.elapsed >= 60
        assert hook.refused_signatures == 0
        got = hook.events
        assert [e["id"] for e in got] == list(range(1, len(stored) + 1))
        assert sorted((e["type"], e["order_no"]) for e in got) == sorted((s["type"], s["order_no"]) for s in stored)
        assert {e["order_no"] for e in got if e["type"] == "order.created"} == set(orders)
        assert_in_order_per_order(got)

        # a subscriber checks a delivery with nothing but the README: HMAC-SHA256(secret, timestamp + "." + body)
        sample = hook.deliveries[-1]
        body = json.dumps(sample.event, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
        ts = sample.headers["X-Orderbot-Timestamp"]
        expected = hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert sample.headers["X-Orderbot-Signature"] == f"v1={expected}"
        assert sample.headers["X-Orderbot-Event-Id"] == str(sample.event["id"])

        # JetStream: every event once, on <prefix>.<event>, in the same order, its id as Nats-Msg-Id
        messages = await read_stream(js, stream)
        assert [json.loads(m.data)["id"] for m in messages] == list(range(1, len(stored) + 1))
        assert all(m.subject == f"{prefix}.{json.loads(m.data)['type']}" for m in messages)
        assert all(m.headers["Nats-Msg-Id"] == f"orderbot-{json.loads(m.data)['id']}" for m in messages)
        assert_in_order_per_order([json.loads(m.data) for m in messages])


async def test_a_re_sent_event_is_dropped_by_jetstream_on_its_message_id(db: Database, bus: MessageBus) -> None:
    await stock(bus, "SH01", "BP-001", 5)
    async with jetstream_stream() as (stream, prefix, js):
        jet = JetStreamSubscriber(NATS_URL, stream, prefix=prefix)
        store = EventStore(db)
        publisher = EventPublisher(store, [jet], holder="replica-a")
        await store.ensure_cursor(jet.name)
        await drain(publisher, jet)
        await store.rewind(jet.name, next_id=1)  # as after a crash between the ack and the cursor
        await drain(publisher, jet)
        await jet.close()
        assert (await js.stream_info(stream)).state.messages == len(await stored_events(db)) == 1


async def test_replay_sends_again_from_the_given_event_on(db: Database, bus: MessageBus) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    await bus.handle(create_cmd("DY1"))
    await bus.handle(create_cmd("DY2"))
    async with FakeSubscriber(SECRET) as hook, httpx.AsyncClient(timeout=5) as http:
        sub = WebhookSubscriber("planning", hook.url, SECRET, http)
        store = EventStore(db)
        publisher = EventPublisher(store, [sub], holder="replica-a")
        await store.ensure_cursor("planning")
        total = await drain(publisher, sub)
        assert total == len(await stored_events(db)) >= 5
        old = await store.rewind("planning", next_id=3)
        assert old == total
        assert await drain(publisher, sub) == total - 2
    ids = [d.event["id"] for d in hook.deliveries]
    assert ids == list(range(1, total + 1)) + list(range(3, total + 1))


async def test_an_event_commits_with_its_change_or_not_at_all(db: Database, bus: MessageBus) -> None:
    await stock(bus, "SH01", "BP-001", 10)
    order, _ = await bus.handle(create_cmd())
    before = await stored_events(db)
    # stock set; the order created paid (its "paid" step part of the creation, after it), then split
    assert [(e["type"], e["data"].get("to_state")) for e in before] == [
        ("inventory.stock_set", None), ("order.created", None), ("order.state_changed", "paid"),
        ("order.state_changed", "split")]
    with pytest.raises(IllegalTransition):
        await bus.handle(c.FireOrderTrigger(order.order_no, "deliver", by="wh1", via="wecom"))
    assert await stored_events(db) == before  # refused: the audit says so, no event leaves
    created = next(e for e in before if e["type"] == "order.created")
    assert (created["order_no"], created["actor"], created["via"]) == (order.order_no, "api", "api")
    assert created["data"]["channel"] == "douyin"


async def test_two_replicas_deliver_each_event_once(db: Database, bus: MessageBus) -> None:
    await replay_day(bus, 8)
    async with FakeSubscriber(SECRET) as hook, httpx.AsyncClient(timeout=5) as http:
        store = EventStore(db)
        replicas = [EventPublisher(store, [WebhookSubscriber("planning", hook.url, SECRET, http)], holder=name,
                                   batch=5, idle_s=0.05) for name in ("replica-a", "replica-b")]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(p.run_forever(stop)) for p in replicas]
        total = len(await stored_events(db))
        try:
            await until(lambda: len(hook.events) >= total, "every event")
            await asyncio.sleep(0.3)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
    assert [d.event["id"] for d in hook.deliveries] == list(range(1, total + 1))


async def test_a_subscriber_that_only_wants_some_types_gets_those_and_its_cursor_passes_the_rest(
    db: Database, bus: MessageBus
) -> None:
    await replay_day(bus, 4)
    async with FakeSubscriber(SECRET) as hook, httpx.AsyncClient(timeout=5) as http:
        sub = WebhookSubscriber("shipping", hook.url, SECRET, http, events=["order.shipped"])
        store = EventStore(db)
        await store.ensure_cursor("shipping")
        await drain(EventPublisher(store, [sub], holder="a"), sub)
    stored = await stored_events(db)
    assert [e["id"] for e in hook.events] == [s["seq"] for s in stored if s["type"] == "order.shipped"]
    [cursor] = await rows(db, t.event_cursors)
    assert cursor["position"] == len(stored)


@pytest.fixture
async def pg_db(pg_url: str) -> AsyncIterator[Database]:
    await truncate_pg(pg_url)
    database = Database(pg_url)
    yield database
    await database.dispose()


async def test_an_event_whose_transaction_commits_late_is_not_stepped_over(pg_db: Database) -> None:
    """Ids are handed out at insert, commits come in any order: the stream numbers events as they commit."""
    at = CompressedClock().now()
    store = EventStore(pg_db)
    async with FakeSubscriber(SECRET) as hook, httpx.AsyncClient(timeout=5) as http:
        sub = WebhookSubscriber("planning", hook.url, SECRET, http)
        publisher = EventPublisher(store, [sub], holder="a")
        await store.ensure_cursor("planning")
        async with UnitOfWork(pg_db) as slow:
            await slow.store_events([WireEvent("inventory.stock_set", None, {"n": "slow"})], at)  # id 1
            async with UnitOfWork(pg_db) as quick:
                await quick.store_events([WireEvent("inventory.stock_set", None, {"n": "quick"})], at)  # id 2
                await quick.commit()
            await drain(publisher, sub)
            await slow.commit()
        await drain(publisher, sub)
    assert [(d.event["id"], d.event["data"]["n"]) for d in hook.deliveries] == [(1, "quick"), (2, "slow")]


async def test_sequencers_racing_number_each_event_once_and_never_again(db: Database, bus: MessageBus) -> None:
    """Two replicas' publishers sequence while orders are written: every event gets one number, 1..n without
    gaps, and a number once given never changes (a renumbered event would be delivered twice)."""
    await stock(bus, "SH01", "BP-001", 1000)
    stores = [EventStore(db), EventStore(Database(db.url))]
    seen: dict[int, int] = {}  # event id → the number it was first seen with
    writing = True

    async def write() -> None:
        nonlocal writing
        try:
            for n in range(60):
                await bus.handle(create_cmd(f"RACE{n:03d}"))
        finally:
            writing = False

    changed: list[tuple[int, int, int]] = []

    async def sequence(store: EventStore) -> None:
        while writing:
            await store.sequence(limit=3)
            for event in await stored_events(db):
                first = seen.setdefault(event["id"], event["seq"]) if event["seq"] is not None else None
                if first is not None and first != event["seq"]:
                    changed.append((event["id"], first, event["seq"]))

    try:
        await asyncio.gather(write(), *(sequence(s) for s in stores * 3))
        while await stores[0].sequence():
            pass
        for event in await stored_events(db):
            if seen.setdefault(event["id"], event["seq"]) != event["seq"]:
                changed.append((event["id"], seen[event["id"]], event["seq"]))
    finally:
        await stores[1]._db.dispose()
    numbers = sorted(seen.values())
    assert numbers == list(range(1, len(seen) + 1))
    assert not changed, changed


async def test_on_sqlite_a_sequencer_holds_the_write_lock_from_its_first_read(sqlite_url: str) -> None:
    """The interleaving that renumbered events, forced: while one sequencer is between reading the unnumbered
    ids and reading the top number, another replica tries to number the same events. It must be kept out
    (the file is locked) rather than number them first and see them numbered again on top of its numbers."""
    db = Database(sqlite_url)
    path = make_url(sqlite_url).database
    try:
        bus = build_bus(db, Deps())
        await stock(bus, "SH01", "BP-001", 5)
        await bus.handle(create_cmd("DY1"))
        other: list[str] = []

        def meanwhile(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if "max(events.seq)" not in statement or other:
                return
            replica = sqlite3.connect(str(path), timeout=0.2)
            try:
                ids = [row[0] for row in replica.execute("SELECT id FROM events WHERE seq IS NULL ORDER BY id")]
                with replica:
                    replica.executemany("UPDATE events SET seq = ? WHERE id = ?",
                                        [(n, i) for n, i in enumerate(ids, start=1)])
                other.append("numbered")
            except sqlite3.OperationalError as err:
                other.append(str(err))
            finally:
                replica.close()

        event.listen(db.engine.sync_engine, "before_cursor_execute", meanwhile)
        assert await EventStore(db).sequence() > 0
        event.remove(db.engine.sync_engine, "before_cursor_execute", meanwhile)
        assert other == ["database is locked"]
        numbers = [e["seq"] for e in await stored_events(db)]
        assert numbers == list(range(1, len(numbers) + 1))
    finally:
        await db.dispose()
