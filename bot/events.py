"""The order event bus at the edge: the publisher built from settings, run by `serve`, and
`orderbot events replay|status`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator

import httpx
from aiohttp import web

from bot.cli_database import open_database
from bot.keys import DB, SETTINGS
from config.settings import EventsSettings, Settings
from integrations.db.engine import Database
from integrations.db.events import EventStore
from integrations.events.publisher import EventPublisher, Subscriber
from integrations.events.webhook import WebhookSubscriber

JETSTREAM = "jetstream"  # what `--subscriber` calls the JetStream publication
PUBLISHER = web.AppKey("event_publisher", EventPublisher)


def subscribers(settings: EventsSettings, http: httpx.AsyncClient) -> list[Subscriber]:
    found: list[Subscriber] = [
        WebhookSubscriber(name, sub.url, sub.secret.get_secret_value(), http, events=sub.events)
        for name, sub in sorted(settings.subscribers.items())
    ]
    if settings.nats_url:
        # imported here: nats-py costs ~18 MiB of memory, and most deployments publish no JetStream
        from integrations.events.jetstream import JetStreamSubscriber

        found.append(JetStreamSubscriber(settings.nats_url, settings.nats_stream, timeout_s=settings.timeout_s,
                                         prefix=settings.nats_subject_prefix))
    return found


def build_publisher(settings: EventsSettings, db: Database, http: httpx.AsyncClient) -> EventPublisher:
    return EventPublisher(
        EventStore(db), subscribers(settings, http), holder=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}",
        batch=settings.batch, retry_base_s=settings.retry_base_s, retry_max_s=settings.retry_max_s,
        lease_s=settings.lease_s, idle_s=settings.idle_s,
    )


async def events_ctx(app: web.Application) -> AsyncIterator[None]:
    """Publication runs where the outbox is delivered; with no subscriber and no NATS, events only accumulate."""
    settings = app[SETTINGS].events
    if not (settings.subscribers or settings.nats_url):
        yield
        return
    async with httpx.AsyncClient(timeout=httpx.Timeout(settings.timeout_s)) as http:
        publisher = app[PUBLISHER] = build_publisher(settings, app[DB], http)
        stop = asyncio.Event()
        task = asyncio.create_task(publisher.run_forever(stop))
        yield
        stop.set()
        publisher.notify()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=10)


def cursor_name(settings: Settings, subscriber: str) -> str:
    """The cursor of a configured subscriber (a webhook's name, or `jetstream`)."""
    events = settings.events
    if subscriber == JETSTREAM and events.nats_url:
        return f"{JETSTREAM}:{events.nats_stream}"
    if subscriber in events.subscribers:
        return subscriber
    known = sorted(events.subscribers) + ([JETSTREAM] if events.nats_url else [])
    raise ValueError(f"没有名为 {subscriber} 的订阅方（已配置：{', '.join(known) or '无'}）")


async def replay(settings: Settings, subscriber: str, from_id: int) -> tuple[int, int, int]:
    """Rewind the subscriber's cursor so that event `from_id` is the next it gets; (old position, last event,
    events to send). The running `orderbot serve` sends them."""
    if from_id < 1:
        raise ValueError("--from 须是 1 或更大的事件编号")
    name = cursor_name(settings, subscriber)
    async with open_database(settings) as db:
        store = EventStore(db)
        await store.sequence()
        last = await store.last_seq()
        old = await store.rewind(name, next_id=from_id)
        return old, last, max(0, last - from_id + 1)


async def status(settings: Settings) -> list[str]:
    async with open_database(settings) as db:
        store = EventStore(db)
        last, waiting = await store.last_seq(), await store.unsequenced()
        lines = [f"events: last id {last}, {waiting} committed but not yet numbered"]
        for cursor in await store.cursors():
            state = f"failing since {cursor.failing_since:%Y-%m-%d %H:%M:%S}: {cursor.last_error}" \
                if cursor.failing_since else "ok"
            lines.append(f"{cursor.subscriber}\tat {cursor.position}\tbehind {last - cursor.position}\t{state}")
        return lines
