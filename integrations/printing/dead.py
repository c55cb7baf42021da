"""A label that did not print reaches the people at that store's packing bench: a task card to the store's
warehouse staff (the managers when the store has none) naming the order, the waybill and the printer's own error,
with a `重打` button, and an 异常 (kind print_failed) for the store. A store with no printer set up gets one card.

`__call__` is the dispatcher's `on_dead` (beside the others); `report()` also runs at start-up for rows that died
before a restart. Each row is told once across replicas: its mark "print-dead-told:<id>" commits with the card.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from domain.chat import Button, Card
from domain.clock import utcnow
from domain.outbox import ChatPush
from domain.users import User
from integrations.db.engine import Database
from integrations.db.marks import mark_once
from integrations.db.uow import UnitOfWork
from integrations.delivery.dead_tasks import DeadRowTasks
from integrations.delivery.rows import OutboxRow
from integrations.printing.sender import CHANNEL

log = logging.getLogger(__name__)

KIND = "print_failed"
TOLD_MARK, NO_PRINTER_MARK = "print-dead-told:", "print-no-printer:"
WAREHOUSE, FALLBACK = "warehouse", "manager"


class PrintTrouble(DeadRowTasks):
    channel, mark = CHANNEL, TOLD_MARK
    told = "%d labels could not be printed; each store's warehouse staff have a card"

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow, horizon_s: float | None = None) -> None:
        super().__init__(db, clock=clock, horizon_s=horizon_s)
        self._told_stores: set[str] = set()  # no_printer asked the database once per store and process

    async def tell(self, uow: UnitOfWork, dead: list[OutboxRow], now: datetime) -> None:
        for row in dead:
            card = dead_card(row)
            order_no, _ = _order_and_waybill(row)
            await uow.incidents.open(kind=KIND, message=card.description, at=now, order_no=order_no or None,
                                     store=row.recipient)
            for person in await _bench(uow, row.recipient):
                await uow.send(ChatPush(person.userid, card, f"print-dead:{row.id}:{person.userid}"), at=now)

    async def no_printer(self, store: str) -> None:
        """The first label for a store with no printer: its warehouse staff are told once, ever."""
        if store in self._told_stores:
            return
        self._told_stores.add(store)
        now = self._clock()
        async with UnitOfWork(self._db) as uow:
            if not await mark_once(uow.conn, [f"{NO_PRINTER_MARK}{store}"], now):
                return
            card = Card(
                title=f"门店 {store} 未设置打印机",
                description=(f"门店 {store} 没有设置面单打印机，面单无法打印。请联系管理员在 PRINTING__PRINTERS 中为门店 "
                             f"{store} 配置打印机（tspl://、zpl://、cainiao:// 或 pdf://），配置后等待打印的面单会自动补打。"),
                task_id=f"print-no-printer-{store}"[:128], highlight=True,
            )
            for person in await _bench(uow, store):
                await uow.send(ChatPush(person.userid, card, f"print-no-printer:{store}:{person.userid}"), at=now)
            await uow.commit()
        log.warning("store %s has no printer (PRINTING__PRINTERS): its labels are set aside as unconfigured", store)


async def _bench(uow: UnitOfWork, store: str) -> list[User]:
    people = [u for u in await uow.users.list(role=WAREHOUSE, store=store) if u.active]
    return people or [u for u in await uow.users.list(role=FALLBACK) if u.active]


def _order_and_waybill(row: OutboxRow) -> tuple[str, str]:
    label = row.payload.get("label") or {}
    return str(label.get("order_no") or ""), str(label.get("waybill") or "")


def dead_card(row: OutboxRow) -> Card:
    order_no, waybill = _order_and_waybill(row)
    reason = row.last_error[:200]
    return Card(
        title=f"面单未打印 {order_no}",
        description=(f"订单 {order_no}（运单 {waybill}）的面单没有打出来：{reason}。"
                     f"请检查打印机（电源、网线、纸），然后发「重打 {order_no}」。"),
        task_id=f"print-dead-{row.id}",
        fields=(("订单", order_no), ("运单", waybill), ("门店", row.recipient), ("原因", reason)),
        buttons=(Button(f"reprint {order_no}", "重打"),),
        highlight=True,
    )
