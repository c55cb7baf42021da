"""What the packing bench has asked for: the last label row of an order (for 重打) and whether an e-waybill request
of it is still under way. Read from the outbox, where PrintLabel and WaybillRequest rows live."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from integrations.db import tables as t


class PrintRows:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def last_label(self, order_no: str, waybill: str) -> dict[str, Any] | None:
        """The payload ({"copy", "label"}) of the newest print row of this order and waybill, or None."""
        c = t.outbox.c
        stmt = (select(c.payload).where(c.channel == "print", c.dedup_key.startswith(f"print:{order_no}:{waybill}:"))
                .order_by(c.id.desc()).limit(1))
        payload = (await self.conn.execute(stmt)).scalar()
        return dict(payload) if isinstance(payload, dict) else None

    async def request_under_way(self, order_no: str) -> bool:
        """A waybill request of this order that is neither delivered nor dead."""
        c = t.outbox.c
        stmt = (select(c.id).where(c.channel == "waybill", c.status == "pending",
                                   c.dedup_key.startswith(f"waybill:{order_no}-")).limit(1))
        return (await self.conn.execute(stmt)).first() is not None

    async def requests_made(self, order_no: str) -> int:
        c = t.outbox.c
        stmt = select(c.id).where(c.channel == "waybill", c.dedup_key.startswith(f"waybill:{order_no}-"))
        return len((await self.conn.execute(stmt)).all())
