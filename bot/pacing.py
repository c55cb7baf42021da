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
from collections.abc import Awaitable, Callable

from integrations.delivery.dispatcher import OutboxRow, Sender


class AckPacer:
    """`max_wait_s`: how long one unit of background work waits for the acknowledgements at most.

    A flood — `flood_in_flight` callbacks or more in flight at once — means the acknowledgements themselves are
    the bottleneck: background work then waits until `flood_hold_s` after the flood was last seen, not only for
    the callbacks in flight (between two batches nothing is in flight for a moment, and a unit of work started
    then runs to its end among the next batch). A unit that has waited `max_wait_s` goes anyway — under a flood one
    every `forced_gap_s` at most — so work still progresses while callbacks never stop.

    `flood_in_flight=0`: no flood is ever seen. On SQLite an acknowledgement waits for the write lock the work
    holds, so callbacks pile up because of the work itself: holding the work back there only slows everything."""

    def __init__(self, max_wait_s: float = 1.0, *, flood_in_flight: int = 16, flood_hold_s: float = 0.1,
                 forced_gap_s: float = 0.25) -> None:
        self.in_flight = 0
        self.max_wait_s = max_wait_s
        self.flood_in_flight = flood_in_flight
        self.flood_hold_s = flood_hold_s
        self.forced_gap_s = forced_gap_s
        self._idle = asyncio.Event()
        self._idle.set()
        self._flood_until = 0.0
        self._forced_at = -forced_gap_s

    def flooding(self, now: float) -> bool:
        if not self.flood_in_flight:
            return False
        return self.in_flight >= self.flood_in_flight or now < self._flood_until

    async def yield_to_acks(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self.in_flight and not self.flooding(now):
            return
        deadline = now + self.max_wait_s
        while True:
            flood = self.flooding(now)
            if now >= deadline and not (flood and now - self._forced_at < self.forced_gap_s):
                if flood:
                    self._forced_at = now
                return
            left = (max(deadline, self._forced_at + self.forced_gap_s) if flood else deadline) - now
            if self.in_flight:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._idle.wait(), left)
            elif flood:
                await asyncio.sleep(min(self._flood_until - now, left))
            else:
                return
            now = loop.time()

    def acknowledging(self) -> _Acknowledging:
        """`async with` around the work of answering a verified callback: background work steps aside meanwhile.
        (A plain object rather than a generator-based context manager: every callback enters it.)"""
        return _Acknowledging(self)

    def _enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def _leave(self) -> None:
        if self.flood_in_flight and self.in_flight >= self.flood_in_flight:  # held from its last moment
            self._flood_until = asyncio.get_running_loop().time() + self.flood_hold_s
        self.in_flight -= 1
        if not self.in_flight:
            self._idle.set()


class _Acknowledging:
    __slots__ = ("_pacer",)

    def __init__(self, pacer: AckPacer) -> None:
        self._pacer = pacer

    async def __aenter__(self) -> None:
        self._pacer._enter()

    async def __aexit__(self, *exc: object) -> None:
        self._pacer._leave()


class PacedSender:
    """An outbox sender that lets acknowledgements go first before each routine delivery. An urgent row (an
    exception push) does not step aside: under a steady flood of callbacks the wait would be the full
    `max_wait_s` for every row, and the exception push is a single send someone is waiting for."""

    def __init__(self, sender: Sender, pace: Callable[[], Awaitable[None]]) -> None:
        self._sender = sender
        self._pace = pace

    async def deliver(self, row: OutboxRow) -> None:
        if not row.urgent:
            await self._pace()
        await self._sender.deliver(row)
