"""Acknowledgements first: background work lets the platform callbacks being answered go before it.

WeCom retries a callback not answered within 5 s and DingTalk likewise; the work a message causes can
wait a little, but not for ever. Background loops call `yield_to_acks()` before each unit of work: it
returns at once when no callback is in flight, else when every callback in flight at that moment has been
answered (at most `max_wait_s`). Callbacks that arrive meanwhile do not hold it back again: waiting for a
moment with none in flight would stall every step for `max_wait_s` under steady traffic (a busy day), and
a person's 拣货 would take seconds. So each step yields one turn: a burst's acknowledgements, waiting on
their group commit, are not queued behind the work, and the work goes on at the pace the acknowledgements
leave room for.

A callback counts as in flight only from the moment its body has been read and its signature verified
(the route enters `acknowledging()` then): an unauthenticated sender that never finishes its body must not
hold everyone's work back (bot/edge.py times such bodies out).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable

from integrations.delivery.dispatcher import OutboxRow, Sender


class AckPacer:
    def __init__(self, max_wait_s: float = 1.0) -> None:
        self.max_wait_s = max_wait_s
        self._tickets = itertools.count()
        self._open: dict[int, None] = {}  # the tickets of the callbacks in flight, oldest first
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []  # (first ticket not waited for, its wake-up)

    @property
    def in_flight(self) -> int:
        return len(self._open)

    async def yield_to_acks(self) -> None:
        if not self._open:
            return
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((next(reversed(self._open)) + 1, wake))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake, self.max_wait_s)

    @contextlib.asynccontextmanager
    async def acknowledging(self) -> AsyncIterator[None]:
        """Around the work of answering a verified callback: background work waits for it to end."""
        ticket = next(self._tickets)
        self._open[ticket] = None
        try:
            yield
        finally:
            del self._open[ticket]
            self._wake_waiters()

    def _wake_waiters(self) -> None:
        """Wake the work whose callbacks (every ticket below its mark) have all been answered."""
        oldest = next(iter(self._open), None)
        waiting = []
        for mark, wake in self._waiters:
            if wake.done():
                continue  # gave up after max_wait_s
            if oldest is None or oldest >= mark:
                wake.set_result(None)
            else:
                waiting.append((mark, wake))
        self._waiters = waiting


class PacedSender:
    """An outbox sender that lets acknowledgements go first before each delivery."""

    def __init__(self, sender: Sender, pace: Callable[[], Awaitable[None]]) -> None:
        self._sender = sender
        self._pace = pace

    async def deliver(self, row: OutboxRow) -> None:
        await self._pace()
        await self._sender.deliver(row)
