"""A text that could not be sent becomes customer service's task: an 异常 (kind sms_failed) naming the order, and a
push to everyone with the role `service` (the managers when there is nobody), so someone phones the customer.

Told once per row across replicas (integrations/delivery/dead_tasks.py), mark "sms-dead-told:<id>".
"""

from __future__ import annotations

from datetime import datetime

from domain.chat import Reply
from domain.customers import masked_phone
from domain.outbox import ChatPush
from integrations.db.uow import UnitOfWork
from integrations.delivery.dead_tasks import DeadRowTasks
from integrations.delivery.rows import OutboxRow
from integrations.sms.outbox import CHANNEL

KIND = "sms_failed"
TOLD_MARK = "sms-dead-told:"
SERVICE, FALLBACK = "service", "manager"
WHAT = {"order_shipped": "发货通知", "address_changed": "改址通知", "refund_approved": "退款通知"}


class SmsDeadRows(DeadRowTasks):
    channel, mark = CHANNEL, TOLD_MARK
    told = "%d customer texts could not be sent; customer service has a task for each"

    async def tell(self, uow: UnitOfWork, dead: list[OutboxRow], now: datetime) -> None:
        people = await uow.users.list(role=SERVICE) or await uow.users.list(role=FALLBACK)
        for row in dead:
            text = task_text(row)
            await uow.incidents.open(kind=KIND, message=text, at=now, order_no=_order_no(row))
            for person in people:
                await uow.send(ChatPush(person.userid, Reply(text), f"sms-dead:{row.id}:{person.userid}"), at=now)


def _order_no(row: OutboxRow) -> str | None:
    return str(row.payload.get("order_no") or "") or None


def task_text(row: OutboxRow) -> str:
    order = _order_no(row)
    about = f"订单 {order} 的" if order else ""
    reason = row.last_error[:120]
    return (f"客户短信未发出：{about}{WHAT.get(row.kind, row.kind)}发往 {masked_phone(row.recipient)} 失败"
            f"（{reason}）。请电话告知客户，并核对手机号。")
