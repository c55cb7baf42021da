"""Outbox channel "k3": each row (domain/outbox_systems.py K3Booking) books one document in K3 Cloud (books.py), and the
bill number K3 gives is stored on the order (table k3_bills, shown by 查询) with an audit line.

Outcomes: K3's refusal (IsSuccess false) is final: the row dies with K3's own message and finance gets a task
(books_dead.py). No answer, a time-out, an HTTP error or a lost session that a new login did not cure are retried
with back-off inside the delivery window; the retry asks K3 first, so a Save K3 accepted before the time-out is not
booked twice. Without K3 book settings the rows are set aside as "unconfigured" (counted on /metrics) and are due
again at the first start with settings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from domain.clock import utcnow
from domain.events import Change
from integrations.channels.k3.books import KIND_LABELS, Booked, BookingStopped, K3Books
from integrations.channels.k3.client import K3Error, K3Refused
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from integrations.delivery.rows import OutboxRow, PermanentDelivery, RetryableDelivery, SetAside
from integrations.delivery.set_aside import UNCONFIGURED, revive_set_aside

log = logging.getLogger(__name__)

CHANNEL = "k3"
NOT_CONFIGURED = ("not configured: ORDERBOT_K3__SERVER_URL, ACCT_ID, APP_ID, APP_SECRET and ORG_NUMBER are needed "
                  "to book in K3")


async def record_bill(db: Database, row: OutboxRow, booked: Booked, at: datetime) -> None:
    """The K3 number on the order (k3_bills, one row per document) and a line in the order's audit trail."""
    order_no, ref = str(row.payload["order_no"]), str(row.payload["ref"])
    values = {"order_no": order_no, "kind": row.kind, "ref": ref, "bill_no": booked.bill_no, "status": booked.status,
              "booked_at": at, "updated_at": at}
    dialect = sqlite if db.is_sqlite else postgresql
    stmt = dialect.insert(t.k3_bills).values(**values)
    stmt = stmt.on_conflict_do_update(index_elements=[t.k3_bills.c.kind, t.k3_bills.c.ref],
                                      set_={"bill_no": booked.bill_no, "status": booked.status, "updated_at": at})
    detail = {"kind": row.kind, "ref": ref, "bill_no": booked.bill_no, "status": booked.status,
              "outbox_id": row.id, "found": booked.found}
    async with UnitOfWork(db) as uow:
        uow.acting("system", "k3")
        await uow.conn.execute(stmt)
        await uow.record([Change("order", order_no, "k3_booked", detail=detail)], at)
        await uow.commit()


class K3BooksSender:
    """Delivers "k3" rows: kind "receivable" or "red_receivable", payload as K3Booking.payload()."""

    def __init__(self, books: K3Books, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._books = books
        self._db = db
        self._clock = clock

    async def deliver(self, row: OutboxRow) -> None:
        what = f"{KIND_LABELS.get(row.kind, row.kind)} for {row.payload.get('ref')}"
        try:
            booked = await self._books.book(row.kind, row.payload)
        except BookingStopped as err:
            await record_bill(self._db, row, Booked(err.bill_no, err.status, False), self._clock())
            log.warning("k3 row %s: %s %s saved, %s failed: %s", row.id, what, err.bill_no, err.step, err.cause)
            if isinstance(err.cause, K3Refused):
                raise PermanentDelivery(f"K3 {err.bill_no} 已保存，{err.step}被拒：{err.cause.message}") from err
            raise RetryableDelivery(f"k3: {err.bill_no} {err.step}: {err.cause}") from err
        except K3Refused as err:
            log.warning("k3 row %s: %s refused: %s", row.id, what, err.message)
            raise PermanentDelivery(f"K3 拒绝：{err.message}") from err
        except (K3Error, KeyError, ValueError) as err:
            raise RetryableDelivery(f"k3: {err}") from err
        await record_bill(self._db, row, booked, self._clock())
        log.info("k3 row %s: %s booked as %s (status %s%s)", row.id, what, booked.bill_no, booked.status,
                 ", found from an earlier attempt" if booked.found else "")


class UnconfiguredBooks:
    """Channel "k3" without K3 book settings: every row is set aside as "unconfigured" at once, counted on /metrics as
    orderbot_outbox_rows{channel="k3",status="unconfigured"}, and booked once configured (revive_unconfigured)."""

    async def deliver(self, row: OutboxRow) -> None:
        raise SetAside(UNCONFIGURED, NOT_CONFIGURED)


async def revive_unconfigured(db: Database, now: datetime) -> int:
    """K3 is configured now: every row set aside meanwhile is due (the books want all of them, however old: each
    carries its own business date)."""
    revived, _ = await revive_set_aside(db, CHANNEL, now)
    if revived:
        log.warning("k3 configured: %d documents set aside while it was not will be booked now", revived)
    return revived


async def bills_of(db: Database, order_no: str) -> list[dict[str, object]]:
    """The K3 documents of one order, oldest first (for tests and tools; handlers read them through the views)."""
    k = t.k3_bills.c
    async with db.engine.connect() as conn:
        result = await conn.execute(select(t.k3_bills).where(k.order_no == order_no).order_by(k.id))
        return [dict(r._mapping) for r in result]
