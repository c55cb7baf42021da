"""Acknowledgements first: while platform callbacks are being answered, background work steps aside.

WeCom retries a callback not answered within 5 s and DingTalk likewise; the work a message causes can
wait a little. Background loops call `yield_to_acks()` before each unit of work: it returns at once when
no callback is in flight, else waits until none is, for at most `max_wait_s`, so work still progresses
under a continuous flood.

A callback counts as in flight only from the moment its body has been read and its signature verified
(the route enters `acknowledging()` then): an unauthenticated sender that never finishes its body must not
hold everyone's work back (bot/edge.py times such bodies out).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from integrations.delivery.dispatcher import OutboxRow, Sender


class AckPacer:
    def __init__(self, max_wait_s: float = 1.0) -> None:
        self.in_flight = 0
        self.max_wait_s = max_wait_s
        self._idle = asyncio.Event()
        self._idle.set()

    async def yield_to_acks(self) -> None:
        if self.in_flight:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), self.max_wait_s)

    @contextlib.asynccontextmanager
    async def acknowledging(self) -> AsyncIterator[None]:
        """Around the work of answering a verified callback: background work steps aside meanwhile."""
        self.in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self._idle.set()


class PacedSender:
    """An outbox sender that lets acknowledgements go first before each delivery."""

    def __init__(self, sender: Sender, pace: Callable[[], Awaitable[None]]) -> None:
        self._sender = sender
        self._pace = pace

    async def deliver(self, row: OutboxRow) -> None:
        await self._pace()
        await self._sender.deliver(row)
