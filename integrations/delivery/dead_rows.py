"""Managers hear about outbox rows that will never be delivered: one digest per manager for all the rows that
died together, on another platform than the one that failed where the manager is on one.

Twenty cards dead after an outage are one warning, not twenty — and not through the channel that just failed
if DingTalk can carry it while WeCom is down (or the other way round). Crash-safe and shared by replicas: a dead
row is reported when its mark "dead-told:<row id>" is inserted into alert_marks in the same transaction as the
warnings; a replica that dies before committing leaves its rows unmarked for the next report.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, cast, exists, literal, or_, select

from domain.chat import Reply, to_payload
from domain.clock import utcnow
from domain.users import User
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.marks import mark_once
from integrations.db.uow import UnitOfWork
from integrations.delivery.lanes import first_of
from integrations.delivery.rows import OutboxRow, shown_recipient

log = logging.getLogger(__name__)

ADMIN_ROLE = "manager"
WARNING_KEY = "dead:"  # a warning's dedup key: dead:<lowest row id it reports>:<manager>
TOLD_MARK = "dead-told:"
WECOM_CHAT, DINGTALK_CHAT = "wecom_chat", "dingtalk_chat"  # the fan-out's per-platform channels
MAX_LINES = 15  # rows listed by number; the others are counted
LINE_CHARS = 70


class DeadRowWarnings:
    """`on_dead` for the dispatcher (notes a death), and `run` (reports soon after, gathering rows that die
    together). `channels`: the dispatcher's channels, to tell whether another platform can carry the warning.
    `horizon_s`: rows committed longer ago than this are not reported (it must exceed the retry window)."""

    def __init__(
        self, db: Database, *, channels: Collection[str], clock: Callable[[], datetime] = utcnow,
        gather_s: float = 5.0, batch: int = 500, horizon_s: float = 2 * 86400,
    ) -> None:
        self._db = db
        self._other = {WECOM_CHAT: DINGTALK_CHAT, DINGTALK_CHAT: WECOM_CHAT} if {
            WECOM_CHAT, DINGTALK_CHAT} <= set(channels) else {}
        self._clock = clock
        self._gather_s = gather_s
        self._batch = batch
        self._horizon = timedelta(seconds=horizon_s)  # older dead rows were told about before these digests existed
        self._noticed = asyncio.Event()

    async def __call__(self, row: OutboxRow) -> None:
        self._noticed.set()

    async def run(self, stop: asyncio.Event, every_s: float = 300.0) -> None:
        """Report at start (rows that died before a restart), shortly after each death, and every `every_s`."""
        while not stop.is_set():
            try:
                while await self.report():
                    pass
            except Exception:
                log.exception("reporting dead outbox rows failed; trying again later")
            await first_of(stop, self._noticed, wait_s=every_s)
            self._noticed.clear()
            await first_of(stop, wait_s=self._gather_s)  # let the rows that die together join one digest

    async def report(self) -> int:
        """One warning per manager for the dead rows not reported yet; returns how many rows it reported."""
        now = self._clock()
        async with UnitOfWork(self._db) as uow:
            dead = await self._unreported(uow, now)
            won = await mark_once(uow.conn, [f"{TOLD_MARK}{row.id}" for row in dead], now) if dead else set()
            dead = [row for row in dead if f"{TOLD_MARK}{row.id}" in won]  # another replica took the rest
            if not dead:
                return 0
            managers = await uow.users.list(role=ADMIN_ROLE)
            text = digest_text(dead)
            failed = {row.channel for row in dead}
            warnings = [self._warning(m, text, failed, dead[0].id) for m in managers]
            taken = await uow.outbox_keys.taken([w["dedup_key"] for w in warnings])  # told before this digest
            await uow.enqueue_many([w for w in warnings if w["dedup_key"] not in taken], at=now)
            await uow.commit()
        log.info("told %d managers about %d dead outbox rows", len(managers), len(dead))
        return len(dead)

    async def _unreported(self, uow: UnitOfWork, now: datetime) -> list[OutboxRow]:
        c = t.outbox.c
        marks = t.alert_marks.c
        told = exists().where(marks.key == literal(TOLD_MARK) + cast(c.id, String))
        stmt = (
            select(t.outbox)
            .where(c.status == "dead", c.created_at >= now - self._horizon,
                   or_(c.dedup_key.is_(None), ~c.dedup_key.startswith(WARNING_KEY)), ~told)
            .order_by(c.id)
            .limit(self._batch)
        )
        return [OutboxRow.from_mapping(r._mapping) for r in await uow.conn.execute(stmt)]

    def _warning(self, manager: User, text: str, failed: set[str], first_id: int) -> dict[str, Any]:
        """On the other platform when everything that died went through one and the manager is on the other;
        else through "chat", which reaches them wherever they are."""
        channel, recipient = "chat", manager.userid
        if len(failed) == 1 and (other := self._other.get(next(iter(failed)))):
            reach = manager.dingtalk_id if other == DINGTALK_CHAT else manager.userid
            if reach:
                channel, recipient = other, reach
        return {"channel": channel, "kind": "message", "recipient": recipient,
                "payload": to_payload(Reply(text)), "dedup_key": f"{WARNING_KEY}{first_id}:{manager.userid}"}


def digest_text(dead: list[OutboxRow]) -> str:
    lines = [f"{len(dead)} 条外发消息投递失败，已停止重试："]
    for row in dead[:MAX_LINES]:
        line = f"#{row.id}（{row.channel}/{row.kind} → {shown_recipient(row)}，尝试 {row.attempts} 次）：{row.last_error}"
        lines.append(line if len(line) <= LINE_CHARS else line[: LINE_CHARS - 1] + "…")
    if len(dead) > MAX_LINES:
        lines.append(f"另有 {len(dead) - MAX_LINES} 条（#{dead[MAX_LINES].id} 起）未列出。")
    return "\n".join(lines)
