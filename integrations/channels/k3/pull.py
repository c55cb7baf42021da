"""The catch-up pull of K3 sales orders: ExecuteBillQuery on SAL_SaleOrder by modification time, page by page.

Paging: each page asks for `FModifyDate >= cursor` ordered by (FModifyDate, FBillNo), skipping with StartRow the
rows at the cursor's own instant that this run already stored, with Limit rows. The last bill of a full page
may be cut, so it is read again with the next page. The cursor (channel_cursors) moves to the modification time
of the last stored bill only after that page's orders are stored; the next run reads the bills of that instant
again, which orderbot already holds (CreateOrder is idempotent on channel + external id). So a crash or a day
of downtime is caught up from where it stopped, without duplicates.

A bill that cannot be mapped, or that the domain refuses, is parked (one 异常 per page lists them) and the
pull goes on. A K3 error or time-out stops this run; the next run starts at the stored cursor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain import commands as c
from domain.errors import DomainError
from integrations.channels import MappingError
from integrations.channels.k3.client import SALE_ORDER, K3Client, K3Error, k3_time
from integrations.channels.k3.mapping import BILL_NO, CHANNEL, FIELDS, MODIFIED, to_order
from integrations.db.channel_cursors import ChannelCursors

log = logging.getLogger(__name__)
Dispatch = Callable[[Any], Awaitable[Any]]
MAX_PAGE_GROWTH = 8  # a page holding one bill only is asked again up to this many times larger


@dataclass
class PullReport:
    pages: int = 0
    rows: int = 0
    created: int = 0
    duplicates: int = 0
    parked: list[tuple[str, str]] = field(default_factory=list)  # (bill number, reason)
    cursor: str = ""
    failed: str = ""

    def summary(self) -> str:
        text = f"K3 拉取 {self.rows} 行：新订单 {self.created}，已有 {self.duplicates}，搁置 {len(self.parked)}"
        return text + (f"；中断：{self.failed}" if self.failed else "")


def _bills(rows: Sequence[Sequence[Any]]) -> list[list[Sequence[Any]]]:
    """Consecutive rows of one bill number, in order."""
    bills: list[list[Sequence[Any]]] = []
    for row in rows:
        if bills and bills[-1][0][BILL_NO] == row[BILL_NO]:
            bills[-1].append(row)
        else:
            bills.append([row])
    return bills


def _filter_time(position: str) -> str:
    return position.replace("T", " ")


class K3Pull:
    def __init__(self, client: K3Client, cursors: ChannelCursors, dispatch: Dispatch, *, page_size: int,
                 first_since: datetime, clock: Callable[[], datetime], concurrency: int = 1) -> None:
        self.client, self.cursors, self.dispatch = client, cursors, dispatch
        self.gate = asyncio.Semaphore(concurrency)  # bills of a page stored at once, each in its own transaction
        self.page_size, self.first_since, self.clock = page_size, first_since, clock

    async def run(self) -> PullReport:
        report = PullReport()
        cursor = await self.cursors.get(CHANNEL) or k3_time(self.first_since)
        skip, limit = 0, self.page_size
        oversized: set[str] = set()
        while True:
            try:
                rows = await self.client.bill_query(
                    SALE_ORDER, FIELDS, start_row=skip, limit=limit, order_string="FModifyDate ASC,FBillNo ASC",
                    filter_string=f"{self.client.cfg.order_filter} AND FModifyDate >= '{_filter_time(cursor)}'",
                )
            except K3Error as err:
                report.failed = str(err)
                log.warning("K3 pull stopped at %s: %s", cursor, err)
                break
            report.pages += 1
            full = len(rows) >= limit
            bills = _bills(rows)
            if full and len(bills) == 1 and limit < self.page_size * MAX_PAGE_GROWTH:
                limit *= 2  # one bill with more lines than a page: ask again for more rows
                continue
            if full and len(bills) > 1:
                bills = bills[:-1]  # may be cut by the page's end: read again with the next page
            elif full:  # one bill longer than the largest page: parked whole, never stored cut
                oversized.add(str(bills[0][0][BILL_NO]))
            limit = self.page_size
            report.rows += sum(len(b) for b in bills)
            await self._store(bills, report, oversized)
            if bills:
                last = str(bills[-1][0][MODIFIED])
                same = sum(len(b) for b in bills if str(b[0][MODIFIED]) == last)
                skip = skip + same if last == cursor else same
                cursor = last
                await self.cursors.put(CHANNEL, cursor, self.clock())
            if not full:
                break
        report.cursor = cursor
        return report

    async def _store(self, bills: Sequence[Sequence[Sequence[Any]]], report: PullReport, oversized: set[str]) -> None:
        parked: list[tuple[str, str]] = []

        async def store(rows: Sequence[Sequence[Any]]) -> None:
            bill = str(rows[0][BILL_NO])
            if bill in oversized:
                if not any(b == bill for b, _ in report.parked + parked):
                    parked.append((bill, f"明细超过 {self.page_size * MAX_PAGE_GROWTH} 行，请拆单"))
                return
            try:
                async with self.gate:
                    _, created = await self.dispatch(to_order(rows))
            except MappingError as err:
                parked.append((bill, f"字段 {err.field}：{err.reason}"))
                return
            except DomainError as err:
                parked.append((bill, err.reason))
                return
            if created:
                report.created += 1
            else:
                report.duplicates += 1

        await asyncio.gather(*(store(rows) for rows in bills))
        parked.sort()
        if parked:
            log.warning("K3 pull parked %d bill(s): %s", len(parked), "; ".join(f"{b}: {r}" for b, r in parked[:10]))
            report.parked.extend(parked)
            await self.dispatch(c.ParkChannelOrders(CHANNEL, tuple(parked), by="k3", via="k3"))
