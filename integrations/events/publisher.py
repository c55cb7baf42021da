"""The publisher: each subscriber's cursor walks the event stream in order, one event at a time.

Per subscriber, not per event: an event is sent only after every earlier one was accepted, so a subscriber
sees each order's events in the order they happened (in fact the whole stream in order), and one that is
down holds up only itself. A failure is tried again, with capped exponential back-off and jitter, for as
long as it takes — nothing is skipped, so an outage of any length loses nothing. The cursor moves only
after the subscriber accepted, so a crash re-sends at most the last few events (at-least-once: subscribers
de-duplicate on the event id). Replicas share the work through a lease on each cursor row.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from domain.clock import utcnow
from integrations.db.events import EventStore, PublishedEvent

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """The subscriber did not take the event (down, slow, refused): try again later, from this event."""


class Subscriber(Protocol):
    name: str

    def wants(self, event: PublishedEvent) -> bool: ...
    async def deliver(self, event: PublishedEvent) -> None: ...
    async def close(self) -> None: ...


@dataclass(frozen=True)
class Step:
    delivered: int = 0
    read: int = 0
    failed: str | None = None
    held_elsewhere: bool = False


Wait = Callable[[float], Awaitable[None]]


class EventPublisher:
    def __init__(
        self, store: EventStore, subscribers: Sequence[Subscriber], *, holder: str,
        clock: Callable[[], datetime] = utcnow, wait: Wait | None = None, batch: int = 100,
        retry_base_s: float = 1.0, retry_max_s: float = 60.0, lease_s: float = 30.0, idle_s: float = 0.5,
    ) -> None:
        names = [s.name for s in subscribers]
        if len(set(names)) != len(names):
            raise ValueError(f"two subscribers share a name: {names}")
        self._store = store
        self.subscribers = list(subscribers)
        self._holder = holder
        self._clock = clock
        self._wait = wait
        self._batch = max(1, batch)
        self._retry_base_s = retry_base_s
        self._retry_max_s = max(retry_base_s, retry_max_s)
        self._lease = timedelta(seconds=lease_s)
        self._idle_s = idle_s
        self._failures: dict[str, int] = {}
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """Events were committed: look now rather than at the end of the idle wait."""
        self._wake.set()

    async def run_forever(self, stop: asyncio.Event) -> None:
        for subscriber in self.subscribers:
            await self._store.ensure_cursor(subscriber.name)
        try:
            await asyncio.gather(*(self._pump(subscriber, stop) for subscriber in self.subscribers))
        finally:
            for subscriber in self.subscribers:
                try:
                    await self._store.release(subscriber.name, self._holder)
                    await subscriber.close()
                except Exception:  # the database may be what is going away
                    log.warning("could not release the event cursor of %s", subscriber.name, exc_info=True)

    async def _pump(self, subscriber: Subscriber, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                step = await self.step(subscriber)
            except Exception:  # a database hiccup must not end publication; the next step retries
                log.exception("event publication to %s failed a step", subscriber.name)
                step = Step(failed="step failed")
            if step.failed is not None:
                await self._pause(stop, self.backoff_s(subscriber.name))
            elif step.held_elsewhere:
                await self._pause(stop, self._lease.total_seconds() / 3)
            elif step.read < self._batch:
                await self._pause(stop, self._idle_s)

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        if self._wait is not None:
            await self._wait(seconds)
            return
        self._wake.clear()
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def backoff_s(self, name: str) -> float:
        """After n failures in a row: base × 2^(n−1), at most the cap, plus up to 10 % jitter."""
        failures = max(1, self._failures.get(name, 1))
        delay = min(self._retry_max_s, self._retry_base_s * 2 ** min(failures - 1, 30))
        return delay * (1 + random.uniform(0, 0.1))

    async def step(self, subscriber: Subscriber) -> Step:
        """Deliver up to one batch from the subscriber's cursor; stops at the first failure."""
        name = subscriber.name
        now = self._clock()
        position = await self._store.claim(name, self._holder, now, now + self._lease)
        if position is None:
            return Step(held_elsewhere=True)
        events = await self._store.after(position, self._batch)
        if len(events) < self._batch and await self._store.sequence():
            events = await self._store.after(position, self._batch)
        start, done, delivered, error = position, position, 0, None
        renewed = now
        for event in events:
            if subscriber.wants(event):
                try:
                    await subscriber.deliver(event)
                except DeliveryFailed as err:
                    error = str(err) or type(err).__name__
                    break
                except Exception as err:  # a bug in a sender: retried like a failure, but loudly
                    log.exception("event %s to %s: unexpected error", event.id, name)
                    error = f"{type(err).__name__}: {err}"
                    break
                delivered += 1
            done = event.id
            if self._clock() - renewed > self._lease / 3:  # keep the lease while a long batch goes out
                renewed = self._clock()
                if not await self._store.advance(name, self._holder, start=start, to=done, now=renewed,
                                                 until=renewed + self._lease):
                    return Step(delivered=delivered, read=len(events))  # rewound or taken: read again
                start = done
        if done != start:
            at = self._clock()
            await self._store.advance(name, self._holder, start=start, to=done, now=at, until=at + self._lease)
        if error is not None:
            await self._failed(name, error)
            return Step(delivered=delivered, read=len(events), failed=error)
        if self._failures.pop(name, 0):
            log.info("events to %s flow again (from event %s)", name, position + 1)
        return Step(delivered=delivered, read=len(events))

    async def _failed(self, name: str, error: str) -> None:
        failures = self._failures[name] = self._failures.get(name, 0) + 1
        if failures == 1:  # once per outage, not once per attempt: an outage must not flood the log
            log.warning("events to %s are held up: %s; retrying until it takes them", name, error)
        await self._store.failed(name, self._holder, error=error, now=self._clock())


async def drain(publisher: EventPublisher, subscriber: Subscriber, *, max_steps: int = 1_000_000) -> int:
    """Deliver to one subscriber until it has everything or refuses; how many events it took (for the CLI and
    tests; the service runs `run_forever`)."""
    total = 0
    for _ in range(max_steps):
        step = await publisher.step(subscriber)
        total += step.delivered
        if step.failed is not None or step.held_elsewhere or step.read == 0:
            break
    return total
