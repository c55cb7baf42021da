"""Channels told back (outbox channel "channel_ship"): one sender that hands each row to its platform's sender by
kind (douyin, miniprogram), and the task for customer service when a row dies — the platform refused it for good
(its own message in the task) or it ran out of retries — so the waybill is entered in the platform by hand.

A platform that is not configured sets its rows aside as "unconfigured" (counted on /metrics), never left pending.
Each dead row is told once, across replicas: its mark "chship-dead-told:<id>" commits with the task.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from domain.chat import Reply
from domain.outbox import ChatPush
from domain.outbox_systems import CHANNEL_SHIP
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from integrations.delivery.dead_tasks import DeadRowTasks
from integrations.delivery.dispatcher import Sender
from integrations.delivery.rows import OutboxRow, SetAside
from integrations.delivery.set_aside import UNCONFIGURED, revive_set_aside
from integrations.logistics.kuaidi100 import carrier_for

log = logging.getLogger(__name__)

KIND = "channel_ship_failed"
TOLD_MARK = "chship-dead-told:"
SERVICE, FALLBACK = "service", "manager"
PLATFORMS = {"douyin": "抖店", "miniprogram": "小程序（微信）"}
WHERE = {"douyin": "抖店后台「订单-发货」", "miniprogram": "小程序后台「发货信息管理」"}


def our_courier(row: OutboxRow) -> str:
    """The row's courier code (Kuaidi100's), or the one the waybill's prefix names; "" when neither says."""
    return str(row.payload.get("courier") or "") or carrier_for(str(row.payload.get("waybill", "")), "")


class ChannelShipSender:
    def __init__(self, platforms: Mapping[str, Sender]) -> None:
        self._platforms = dict(platforms)

    async def deliver(self, row: OutboxRow) -> None:
        sender = self._platforms.get(row.kind)
        if sender is None:
            raise SetAside(UNCONFIGURED, f"not configured: telling {row.kind} about shipments (see README)")
        await sender.deliver(row)


async def revive_unconfigured(db: Database, kinds: list[str], now: datetime, max_age_days: float = 7) -> int:
    """Platforms configured now: their rows set aside while they were not, and younger than `max_age_days`, are due
    again (a buyer still wants the tracking; older ones stay aside). Returns how many."""
    if not kinds:
        return 0
    revived, _ = await revive_set_aside(db, CHANNEL_SHIP, now, where=(t.outbox.c.kind.in_(kinds),),
                                        max_age=timedelta(days=max_age_days))
    if revived:
        log.warning("%d shipments waiting for %s to be configured will be told now", revived, "/".join(kinds))
    return revived


def task_text(row: OutboxRow) -> str:
    p = row.payload
    platform = PLATFORMS.get(row.kind, row.kind)
    return (f"{platform}发货回传失败：订单 {p.get('order_no', '')}（平台单号 {p.get('external_id', '')}）的运单 "
            f"{p.get('waybill', '')} 没能同步到{platform}（{row.last_error[:160]}）。请在{WHERE.get(row.kind, '平台后台')}"
            f"手动录入运单（录好后在 异常 里把这一条 解决）。")


class ShipmentDeadRows(DeadRowTasks):
    """Dead shipments become customer service's tasks (integrations/delivery/dead_tasks.py)."""

    channel, mark = CHANNEL_SHIP, TOLD_MARK
    told = "%d shipments could not be told to their channel; customer service has a task for each"

    async def tell(self, uow: UnitOfWork, dead: list[OutboxRow], now: datetime) -> None:
        people = await uow.users.list(role=SERVICE) or await uow.users.list(role=FALLBACK)
        for row in dead:
            text = task_text(row)
            await uow.incidents.open(kind=KIND, message=text, at=now,
                                     order_no=str(row.payload.get("order_no") or "") or None)
            for person in people:
                await uow.send(ChatPush(person.userid, Reply(text), f"chship-dead:{row.id}:{person.userid}"),
                               at=now)
