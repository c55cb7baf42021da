"""Order channels that feed orderbot by themselves (Douyin shop, the mini-program, K3 Cloud): each adapter in its
own package, reached only through the platform's wire format, turning the platform's orders into the one
canonical `CreateOrder` (idempotent on channel + external id, the buyer named by `CustomerKeys`)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class MappingError(ValueError):
    """A platform's order that cannot become a canonical order: names the channel and the field."""

    def __init__(self, channel: str, field: str, reason: str) -> None:
        super().__init__(f"{channel}: field {field!r}: {reason}")
        self.channel = channel
        self.field = field
        self.reason = reason


class OrderCounter(Protocol):
    """How many orders a system itself holds that were created in [start, end): for the consistency score."""

    system: str  # douyin | miniprogram | k3

    async def count_orders(self, start: datetime, end: datetime) -> int: ...
