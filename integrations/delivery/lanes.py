"""Claimed rows in flight, one lane per recipient: a lane sends its rows one after another, lanes run side by side.

So a send that stalls holds only its own recipient's later rows — never a whole batch — and the running
dispatcher claims more rows as soon as any finishes (`freed`), instead of waiting for a batch's slowest send.
An urgent row joins its lane ahead of the routine rows that have not started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from integrations.delivery.rows import OutboxRow

log = logging.getLogger(__name__)


class Lanes:
    def __init__(self, deliver: Callable[[OutboxRow], Awaitable[None]], max_in_flight: int) -> None:
        self._deliver = deliver
        self._slots = asyncio.Semaphore(max(1, max_in_flight))
        self._queues: dict[str, deque[OutboxRow]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.held = 0  # rows claimed and not finished (queued or being sent)
        self.freed = asyncio.Event()  # set whenever a row finishes
        self._closing = False

    def add(self, row: OutboxRow) -> None:
        self.held += 1
        queue = self._queues.setdefault(row.recipient, deque())
        if row.urgent and queue:  # ahead of the routine rows not yet started (queue[0] may be under way)
            at = 1
            while at < len(queue) and queue[at].urgent:
                at += 1
            queue.insert(at, row)
        else:
            queue.append(row)
        if row.recipient not in self._tasks:
            self._tasks[row.recipient] = asyncio.create_task(self._run(row.recipient))

    async def _run(self, recipient: str) -> None:
        queue = self._queues[recipient]
        try:
            while queue and not self._closing:
                async with self._slots:
                    if self._closing:
                        break
                    await self._deliver(queue[0])
                queue.popleft()
                self._finished(1)
        except Exception:  # a database error while settling: the rows' claims lapse and another pass retries them
            log.exception("delivery to %s failed; its %d claimed rows wait for their claims to lapse",
                          recipient, len(queue))
            self._finished(len(queue))
            queue.clear()
        finally:
            del self._tasks[recipient]
            if not queue:
                del self._queues[recipient]

    def _finished(self, count: int) -> None:
        self.held -= count
        self.freed.set()

    async def close(self, timeout_s: float) -> list[OutboxRow]:
        """Let the sends under way finish (for at most `timeout_s`); returns the rows never started."""
        self._closing = True
        tasks = list(self._tasks.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout_s)
            for task in late:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*late, return_exceptions=True)
        unstarted = [row for queue in self._queues.values() for row in queue]
        self._queues.clear()
        return unstarted


async def first_of(*events: asyncio.Event, wait_s: float) -> None:
    """Wait until one of `events` is set, or `wait_s` has passed."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
