"""People before order-channel pushes: a person's chat command queued behind a burst of channel pushes (Douyin's
peak arrives in bursts of thousands) is worked on next, not after the burst; each lane keeps its arrival order."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from bot.inbound_queue import InboundQueue
from domain.chat import InboundMessage
from integrations.db.engine import Database


class Recording(InboundQueue):
    def __init__(self, db: Database) -> None:
        super().__init__(db, cast(Any, None), workers=1, commands={"douyin": lambda msg: cast(Any, None)})
        self.worked: list[str] = []

    async def process(self, msg: InboundMessage, *, replayed: bool = False) -> None:
        self.worked.append(msg.message_id)
        await asyncio.sleep(0)


async def test_a_person_queued_behind_channel_pushes_is_worked_on_first() -> None:
    db = Database("sqlite+aiosqlite://")
    queue = Recording(db)
    for n in range(5):
        queue._spawn(InboundMessage("douyin", "shop", "push", message_id=f"push-{n}"))
    queue._spawn(InboundMessage("wecom", "wh1", "text", "拣货 OB00000001", message_id="wh1-pick"))
    queue._spawn(InboundMessage("wecom", "wh2", "text", "质检 OB00000002", message_id="wh2-check"))
    await asyncio.wait_for(queue._queue.join(), timeout=5)
    assert queue.worked == ["wh1-pick", "wh2-check", "push-0", "push-1", "push-2", "push-3", "push-4"]
    for task in queue._workers:
        task.cancel()
    await db.dispose()
