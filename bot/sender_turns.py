"""One person's messages in the order they came: the inbound queue's workers take messages in parallel, but a
second message from the same sender waits until the first one's work is done. Otherwise a hand who types
`拣货` and `质检` back to back sees the second refused (it loaded the order before the first committed)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    holders: int = 0  # running or waiting; the entry goes when it reaches 0, so idle senders cost nothing


class SenderTurns:
    def __init__(self) -> None:
        self._turns: dict[tuple[str, str], _Turn] = {}

    @contextlib.asynccontextmanager
    async def of(self, sender: tuple[str, str]) -> AsyncIterator[None]:
        """Held while one message of `sender` is worked on; waiters go in the order they asked (asyncio.Lock is
        fair), which is the order the queue handed the messages out."""
        turn = self._turns.setdefault(sender, _Turn())
        turn.holders += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.holders -= 1
            if not turn.holders:
                del self._turns[sender]

    def __len__(self) -> int:
        return len(self._turns)
