"""Acknowledgements first: while platform callbacks are being answered, background work steps aside.

WeCom retries a callback not answered within 5 s and DingTalk likewise; the work a message causes can
wait a little. Background loops call `yield_to_acks()` before each unit of work: it returns at once when
no callback is in flight, else waits until none is, for at most `max_wait_s`, so work still progresses
under a continuous flood.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from integrations.delivery.dispatcher import OutboxRow, Sender

CALLBACK_PATHS = ("/wecom/callback", "/dingtalk/callback")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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

    def middleware(self) -> Middleware:
        @web.middleware
        async def count_callbacks(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.method != "POST" or request.path not in CALLBACK_PATHS:
                return await handler(request)
            self.in_flight += 1
            self._idle.clear()
            try:
                return await handler(request)
            finally:
                self.in_flight -= 1
                if not self.in_flight:
                    self._idle.set()

        return count_callbacks


class PacedSender:
    """An outbox sender that lets acknowledgements go first before each delivery."""

    def __init__(self, sender: Sender, pace: Callable[[], Awaitable[None]]) -> None:
        self._sender = sender
        self._pace = pace

    async def deliver(self, row: OutboxRow) -> None:
        await self._pace()
        await self._sender.deliver(row)
