"""What the work under way in this task is about — the inbound message, the order — for every log line it writes.

Context variables: asyncio copies them into each task, so a worker sets them per message and resets them after.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

MESSAGE_ID: ContextVar[str | None] = ContextVar("message_id", default=None)
ORDER_NO: ContextVar[str | None] = ContextVar("order_no", default=None)


@contextmanager
def about(*, message_id: str | None = None, order_no: str | None = None) -> Iterator[None]:
    """Within the block, log lines name this message and/or order (a value left None keeps the outer one)."""
    tokens: list[tuple[ContextVar[str | None], Token[str | None]]] = []
    if message_id:
        tokens.append((MESSAGE_ID, MESSAGE_ID.set(message_id)))
    if order_no:
        tokens.append((ORDER_NO, ORDER_NO.set(order_no)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current() -> dict[str, str]:
    found = {"message_id": MESSAGE_ID.get(), "order_no": ORDER_NO.get()}
    return {name: value for name, value in found.items() if value}
