"""A document K3 would not book becomes finance's task: an 异常 (kind k3_failed) naming the order, and a card to
everyone with the role `finance` (the managers when there is nobody) carrying K3's own error message, so someone
books it by hand or fixes the base data (customer, material, organisation) and books it again.

`on_dead` for the dispatcher (beside the managers' DeadRowWarnings), and `report()` at start-up for rows that died
before a restart. Each row is told once, across replicas: its mark "k3-dead-told:<id>" commits with the task.
"""

from __future__ import annotations

import logging
from datetime import datetime

from domain.chat import Card
from domain.chat_commands import QueryOrder, button
from domain.outbox import ChatPush
from integrations.channels.k3.books import KIND_LABELS
from integrations.channels.k3.books_outbox import CHANNEL
from integrations.db.uow import UnitOfWork
from integrations.delivery.dead_tasks import DeadRowTasks
from integrations.delivery.rows import OutboxRow

log = logging.getLogger(__name__)

KIND = "k3_failed"
TOLD_MARK = "k3-dead-told:"
FINANCE, FALLBACK = "finance", "manager"


class K3DeadRows(DeadRowTasks):
    channel, mark, horizon_s = CHANNEL, TOLD_MARK, 7 * 86400
    told = "%d documents could not be booked in K3; finance has a task for each"

    async def tell(self, uow: UnitOfWork, dead: list[OutboxRow], now: datetime) -> None:
        people = await uow.users.list(role=FINANCE) or await uow.users.list(role=FALLBACK)
        for row in dead:
            order_no = str(row.payload.get("order_no") or "")
            await uow.incidents.open(kind=KIND, message=task_text(row), at=now, order_no=order_no or None)
            for person in people:
                await uow.send(ChatPush(person.userid, task_card(row), f"k3-dead:{row.id}:{person.userid}"), at=now)


def _what(row: OutboxRow) -> str:
    order_no, ref = row.payload.get("order_no", ""), row.payload.get("ref", "")
    doc = KIND_LABELS.get(row.kind, row.kind)
    return f"订单 {order_no} 的{doc}" if ref == order_no else f"售后单 {ref}（订单 {order_no}）的{doc}"


def task_text(row: OutboxRow) -> str:
    return f"金蝶记账失败：{_what(row)}未记入 K3。K3 原话：{row.last_error[:300]}。请核对后在 K3 手工补记。"


def task_card(row: OutboxRow) -> Card:
    order_no = str(row.payload.get("order_no") or "")
    amount = int(row.payload.get("amount_fen") or 0)
    return Card(
        title="金蝶记账失败",
        description=f"{_what(row)}未记入 K3，请核对客户、物料、组织后在 K3 手工补记。",
        task_id=f"k3-dead-{row.id}",
        fields=(("K3 原话", row.last_error[:300]), ("金额", f"¥{amount / 100:,.2f}"),
                ("客户", str(row.payload.get("k3_customer") or row.payload.get("customer_id") or ""))),
        buttons=(button(QueryOrder, order_no, text="查询订单"),) if order_no else (),
        highlight=True,
    )
