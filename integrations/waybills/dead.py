"""An e-waybill that could not be taken becomes the store's task: an 异常 (kind waybill_failed) and a card to the
store's warehouse staff (the supervisors when the store has none) with the provider's own error text and the two
ways on: 重打 <单号> to try again, or 发货 <单号> <运单号> with a hand-written waybill.

`on_dead` for the dispatcher, and `report()` at start-up for rows that died before a restart. Each row is told
once, across replicas: its mark "waybill-dead-told:<id>" commits with the task.
"""

from __future__ import annotations

import logging
from datetime import datetime

from domain.chat import Card
from domain.chat_commands import ReprintLabel, button
from domain.outbox import ChatPush
from integrations.db.uow import UnitOfWork
from integrations.delivery.dead_tasks import DeadRowTasks
from integrations.delivery.rows import OutboxRow
from integrations.waybills.sender import CHANNEL

log = logging.getLogger(__name__)

KIND = "waybill_failed"
TOLD_MARK = "waybill-dead-told:"
STAFF, FALLBACK = "warehouse", "supervisor"


class WaybillDeadRows(DeadRowTasks):
    channel, mark = CHANNEL, TOLD_MARK
    told = "%d e-waybills could not be taken; the stores' warehouse staff have a task for each"

    async def tell(self, uow: UnitOfWork, dead: list[OutboxRow], now: datetime) -> None:
        for row in dead:
            store, order_no = row.recipient, str(row.payload.get("order_no", ""))
            people = await uow.users.list(role=STAFF, store=store) or await uow.users.list(role=FALLBACK)
            card = task_card(row)
            await uow.incidents.open(kind=KIND, message=card.description, at=now, order_no=order_no or None,
                                     store=store, severity="critical")
            for person in people:
                await uow.send(ChatPush(person.userid, card, f"waybill-dead:{row.id}:{person.userid}",
                                        urgent=True), at=now)


def task_card(row: OutboxRow) -> Card:
    order_no = str(row.payload.get("order_no", ""))
    reason = row.last_error[:160]
    return Card(
        title=f"电子面单未取到 · {order_no}",
        description=(f"订单 {order_no} 的电子面单取号失败：{reason}。核对门店和收货地址后点“重新取号”，"
                     f"或手写运单后发送：发货 {order_no} <运单号>"),
        task_id=f"waybill-dead-{row.id}",
        fields=(("门店", row.recipient), ("收货地址", str(row.payload.get("receiver", {}).get("address", "")))),
        buttons=(button(ReprintLabel, order_no, text="重新取号"),),
        highlight=True,
    )
