"""Per-recipient send limits, counted from the outbox itself so every replica agrees, and the digest.

WeCom silently drops app messages beyond 30 per member per minute and 1,000 per hour, and group
robots beyond 20 per minute per key. A sender asks `RecipientLimiter.admit(row)` before it sends:

1. Count what WeCom may have shown the recipient: outbox rows of the channel and recipient whose
   delivered_at lies inside each sliding window (60 s, 3600 s). A row gets its delivered_at when it is
   admitted (a reservation, before the send), keeps it when the outcome is unknown (a time-out: WeCom may
   have shown it), moves it to the moment it was accepted, and loses it only when WeCom is known not to have
   shown it (an errcode answer, no connection). Rows merged into a digest do not count; the digest's own
   row counts once, as the one message it was.
2. No free slot in some window → the row is not sent: DeferDelivery puts it off until the oldest
   counted send leaves that window (attempts unchanged, last_error "deferred: ...").
3. A free slot. "Waiting" rows are the recipient's other pending rows that are due and not held by
   another dispatcher. None waiting → the row goes out as it is. Some waiting → the row and the
   waiting rows go out as ONE digest ("您有 N 条新通知（已合并）：" and one short line each; a card
   becomes "title — description（回复：同意 AS000012）") when
   - this is the last free slot: it is reserved for the digest, so nothing is left behind a full
     window, or
   - the row or a waiting row was deferred before: a freed window is spent on one digest, not a burst.
   Otherwise the row goes out alone and the waiting rows take their own turns.
4. Once the digest is accepted, every merged row is marked delivered with last_error
   "merged into digest <id>", <id> being the row that carried it. A digest takes as many rows as fit
   WeCom's 2,048-byte text limit; the rest wait for the next slot. Nothing is dropped.

Priorities. A row is urgent (an exception push: address change card, logistics conflict, stuck order, 异常
escalation; ChatPush.urgent, stored in outbox.urgent) or routine. Routine rows may use each window's limit
minus `urgent_reserve` (30 - 5 = 25 a minute, 995 an hour by default); urgent rows may use the full limit, so
an urgent card finds a free slot when the person is at their routine limit. An urgent row never carries a
routine digest and is never merged into one (a digest holds routine rows only), and the digest's "last free
slot" is the last ROUTINE slot. The dispatcher claims urgent rows first and puts them ahead of the routine rows
waiting in the recipient's lane, so an urgent row waits behind no routine one; it is deferred only when the
full limit is used.

Urgent bundles. An urgent row goes out alone while the free slots can carry it and the recipient's other due
urgent rows one by one. When they cannot (a surge: one supervisor told of 40 orders out of stock at once, with
5 slots left), the row carries the waiting urgent rows — and only urgent rows — as ONE markdown message
("**N 条异常待处理**…"), each push in full (a card's title, description, fields and the commands of its
buttons), as many as fit WeCom's 4,096-byte markdown limit; the rest wait for the next slot, which bundles
them in turn. So every order of the surge is named within the pass that finds it, the slots left stay free for
the next exception, and nothing goes over the cap. A bundle may take an urgent row another pass of a dispatcher
holds: that pass finds it no longer pending at its own admission (LostClaim) and skips it.

So 50 routine pushes to one person at once arrive as 24 messages and one digest of the other 26 (with no
reserve: 29 and 21); if they trickle in over a minute, as 25 messages and, once the minute has passed, a
digest of the rest.

Passive replies. WeCom lets a callback answer in its own HTTP response (被动回复: the encrypted XML reply,
developer.work.weixin.qq.com/document/path/96469 "被动回复消息格式"). Its frequency page ("访问频率限制",
developer.work.weixin.qq.com/document/path/90454) sets the per-member cap under "发送应用消息频率" —
"每应用对同一个成员不可超过30次/分钟,1000次/小时,超过部分会被丢弃不下发" — i.e. for messages the
application SENDS (message/send), and says they do not count against the basic API rate ("发消息频率不计入基础
频率"). Neither page says whether a passive reply counts against the per-member cap, and the reply pages state
no limit of their own. Finding: not documented either way; passive replies are not sent by orderbot, and this
limiter counts only outbox sends. Whoever adds them should measure against a real corp before relying on them
being outside the cap.
The counts of both windows, whether the recipient has deferred rows pending, and whether the row itself is
still pending under its claim come from ONE query, which on PostgreSQL also reserves the slot when there is
room (recipient_rows.py); the waiting rows are read only when a digest is possible
(the last free slot, or a deferred row), as with two or more free slots and nothing deferred the row goes out
alone whatever is waiting. A row that is no longer ours (merged into a digest meanwhile) raises LostClaim.
Admission is one transaction, and on PostgreSQL it first takes a transaction-level advisory lock on the
channel and recipient: two replicas admitting rows for one person take turns, and the second counts the
first one's reservation. So the count never falls behind what WeCom counts, and the digest — sent on the
last free slot — is never the message that crosses the cap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.clock import utcnow
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.delivery.digest import (
    BUNDLE_MAX_BYTES,
    DIGEST_MAX_BYTES,
    bundle_header,
    chat_line,
    command_text,
    digest_header,
    fitting,
    numbered,
    plain,
    short,
    urgent_item,
)
from integrations.delivery.recipient_rows import CARD_UPDATE, MERGED_PREFIX, RecipientRows
from integrations.delivery.rows import DeferDelivery, LostClaim, OutboxRow
from integrations.delivery.statements import one_statement

__all__ = ["APP_MESSAGE_LIMITS", "CARD_UPDATE", "GROUP_ROBOT_LIMITS", "MERGED_PREFIX", "URGENT_RESERVE", "Admission",
           "RecipientLimiter", "chat_line", "command_text", "plain", "short"]

APP_MESSAGE_LIMITS: tuple[tuple[float, int], ...] = ((60.0, 30), (3600.0, 1000))  # (window s, messages)
GROUP_ROBOT_LIMITS: tuple[tuple[float, int], ...] = ((60.0, 20),)
URGENT_RESERVE = 5  # slots of each window only urgent rows may use
_TAKE_TURN = select(func.pg_advisory_xact_lock(func.hashtext(bindparam("b_key", type_=String))))  # built once


@dataclass(frozen=True)
class Admission:
    """What may go out now: the row alone, or the row followed by the rows merged into its digest."""

    rows: tuple[OutboxRow, ...]

    @property
    def merged(self) -> tuple[OutboxRow, ...]:
        return self.rows[1:]

    @property
    def is_digest(self) -> bool:
        return len(self.rows) > 1

    @property
    def is_bundle(self) -> bool:
        """Urgent rows sent together, each in full (never mixed with routine rows)."""
        return self.is_digest and self.rows[0].urgent


class RecipientLimiter:
    def __init__(
        self,
        db: Database,
        *,
        channel: str = "chat",
        limits: Sequence[tuple[float, int]] = APP_MESSAGE_LIMITS,
        line: Callable[[OutboxRow], str] | None = None,
        clock: Callable[[], datetime] = utcnow,
        max_digest_bytes: int = DIGEST_MAX_BYTES,
        max_merge: int = 200,
        urgent_reserve: int = URGENT_RESERVE,
    ) -> None:
        self.db = self._db = db  # public: the senders read from the same database
        self._channel = channel
        self._limits = tuple(limits)
        reserve = max(0, urgent_reserve)
        self._routine_limits = tuple((window_s, max(1, limit - reserve)) for window_s, limit in self._limits)
        self._line = line or chat_line
        self._clock = clock
        self._max_digest_bytes = max_digest_bytes
        self._rows = RecipientRows(channel, [window_s for window_s, _ in self._limits], is_sqlite=db.is_sqlite,
                                   max_merge=max_merge)

    async def admit(self, row: OutboxRow) -> Admission:
        """Raises DeferDelivery when the recipient has no free slot; else reserves the slot (the row's
        delivered_at) and holds any merged rows.

        Raises LostClaim when the row is no longer pending under its claim (merged into a digest meanwhile).
        """
        now = self._clock()
        limits = self._limits if row.urgent else self._routine_limits
        async with self._db.engine.begin() as conn:
            await self._take_turn(conn, row.recipient)
            counts = await self._rows.count_and_reserve(conn, row, now, limits)
            if not counts.ours:
                raise LostClaim(f"outbox row {row.id} is no longer pending under this claim")
            room, free_at = await self._rows.room(conn, row.recipient, now, counts.used, limits)
            if room <= 0:
                raise DeferDelivery(
                    free_at, f"rate limit for {row.recipient}, next slot {free_at.isoformat()}"
                )
            assert counts.reserved, "room was found, so the slot was reserved with the counts"
            if row.urgent:  # alone while the slots can carry the waiting urgent rows one by one
                if counts.urgent_waiting < room:
                    return Admission((row,))
                merged = fitting(row, await self._rows.waiting(conn, row, now, urgent=True), urgent_item,
                                 bundle_header, BUNDLE_MAX_BYTES, separator="\n\n")
            else:
                # A digest needs waiting rows AND (the last slot, or a deferred row among them or this row). With
                # two or more slots, this row not deferred and no deferred row of the recipient pending at all,
                # the row goes out alone whatever is waiting: no need to read the waiting rows.
                if room > 1 and not row.deferred and not counts.deferred:
                    return Admission((row,))
                waiting = await self._rows.waiting(conn, row, now, urgent=False)
                if not waiting or not (room == 1 or row.deferred or any(w.deferred for w in waiting)):
                    return Admission((row,))
                merged = fitting(row, waiting, self._line, digest_header, self._max_digest_bytes)
            if not merged:
                return Admission((row,))
            claim = row.claimed_until or now + timedelta(seconds=60)
            ids = [m.id for m in merged]
            await conn.execute(update(t.outbox).where(t.outbox.c.id.in_(ids)).values(claimed_until=claim))
            return Admission((row, *merged))

    async def _take_turn(self, conn: AsyncConnection, recipient: str) -> None:
        """PostgreSQL: one admission per channel and recipient at a time, across replicas (released at commit)."""
        if not self._db.is_sqlite:
            await conn.execute(_TAKE_TURN, {"b_key": f"outbox-limit:{self._channel}:{recipient}"})

    def digest_text(self, admission: Admission) -> str:
        lines = [numbered(n, self._line(row)) for n, row in enumerate(admission.rows, start=1)]
        return "\n".join([digest_header(len(admission.rows)), *lines])

    @staticmethod
    def bundle_text(admission: Admission) -> str:
        """Markdown: each urgent row in full, numbered."""
        items = [numbered(n, urgent_item(row)) for n, row in enumerate(admission.rows, start=1)]
        return "\n\n".join([bundle_header(len(admission.rows)), *items])

    async def settle(self, admission: Admission) -> None:
        """The digest was accepted: its merged rows are delivered too."""
        if not admission.merged:
            return
        values = {
            "status": "delivered",
            "delivered_at": self._clock(),
            "claimed_until": None,
            "last_error": f"{MERGED_PREFIX}{admission.rows[0].id}",
        }
        await self._update_merged(admission, values)

    async def release(self, admission: Admission, *, maybe_shown: bool) -> None:
        """The send failed: the merged rows may be claimed again. WeCom known not to have shown the message (it
        answered with an error, or was never reached): the slot is free again. Outcome unknown (a time-out):
        the slot stays taken, from now — WeCom may have shown it a moment ago."""
        c = t.outbox.c
        reserved = None if not maybe_shown else self._clock()
        async with self._db.engine.begin() as conn:
            await conn.execute(update(t.outbox).where(c.id == admission.rows[0].id).values(delivered_at=reserved))
            if admission.merged:
                ids = [row.id for row in admission.merged]
                await conn.execute(
                    update(t.outbox).where(c.id.in_(ids), c.status == "pending").values(claimed_until=None)
                )

    async def _update_merged(self, admission: Admission, values: dict[str, object]) -> None:
        c = t.outbox.c
        ids = [row.id for row in admission.merged]
        stmt = update(t.outbox).where(c.id.in_(ids), c.status == "pending").values(**values)
        async with one_statement(self._db) as conn:
            await conn.execute(stmt)

