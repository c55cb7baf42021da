"""One person's messages in the order they came: the inbound queue's workers take messages in parallel, but a
message from a sender whose earlier message is still being worked on waits behind it, and the worker that has the
earlier one takes it next. Otherwise a hand who types `拣货` and `质检` back to back sees the second refused (it
loaded the order before the first committed). No worker ever waits for a busy sender: it takes the next message."""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

Item = TypeVar("Item")
Sender = tuple[str, str]  # (platform, sender)


class SenderTurns(Generic[Item]):
    def __init__(self) -> None:
        self._behind: dict[Sender, deque[Item]] = {}  # senders being worked on -> their messages waiting behind

    def take(self, sender: Sender, item: Item) -> bool:
        """True: the caller works on `item` now, then on `after(sender)` until it returns None. False: the sender's
        earlier message is under way elsewhere; `item` waits behind it."""
        waiting = self._behind.get(sender)
        if waiting is not None:
            waiting.append(item)
            return False
        self._behind[sender] = deque()
        return True

    def after(self, sender: Sender) -> Item | None:
        """The sender's next message, or None (and the sender is free) when none waits."""
        waiting = self._behind[sender]
        if waiting:
            return waiting.popleft()
        del self._behind[sender]
        return None

    def __len__(self) -> int:
        return len(self._behind)
