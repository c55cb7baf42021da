"""The Douyin shop channel (抖店开放平台): push parsing and signatures, the signed open API client, and the
mapping of a Douyin order to the canonical `CreateOrder`. See README "Douyin shop" for the set-up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from integrations.channels.douyin.client import DouyinOrders


class CursorStore(Protocol):
    """Where a catch-up pull got to (integrations.db.channel_cursors.ChannelCursors)."""

    async def get(self, channel: str) -> str | None: ...

    async def put(self, channel: str, position: str, at: datetime) -> None: ...


@dataclass
class DouyinFeed:
    """What the Douyin use cases need besides the unit of work: the platform's orders and the catch-up cursor."""

    orders: DouyinOrders
    cursors: CursorStore
    store: str | None = None  # the store Douyin orders are allocated to; None: nearest store with stock
