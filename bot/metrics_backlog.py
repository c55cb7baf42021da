"""The database gauges on /metrics: outbox, inbox and incident backlogs, read by one grouped query at scrape time.

`StoreGauges` is a prometheus collector that `bot.metrics.Metrics` registers on its registry; `refresh` reads the
database (cached for `cache_s`, concurrent scrapes share one read) and `collect` turns the last read into gauges.
Every replica reports the same values (use `max by`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import case, func, literal, select, union_all

from domain.clock import utcnow
from integrations.db import tables as t
from integrations.db.engine import Database

log = logging.getLogger(__name__)

OUTBOX_WAITING = ("pending", "dead", "unconfigured", "skipped")  # delivered rows are history (counted by
# orderbot_deliveries_total); unconfigured: SMS rows with no provider set up; skipped: opted out or too old
INBOX_STATUSES = ("unprocessed", "parked")


@dataclass
class Snapshot:
    """One read of the database's backlogs; the timestamps become ages when they are collected."""

    outbox: dict[tuple[str, str], tuple[int, datetime | None]] = field(default_factory=dict)  # (channel, status)
    inbox: dict[tuple[str, str], tuple[int, datetime | None]] = field(default_factory=dict)  # (platform, status)
    incidents: dict[tuple[str, str], tuple[int, datetime | None]] = field(default_factory=dict)  # (kind, open?)
    query_s: float = 0.0


def backlog_query():  # type: ignore[no-untyped-def]
    """Outbox rows waiting or dead by channel, unhandled inbox rows by platform, incidents by kind: one
    statement, one round trip. Each part reads an index or a small table; delivered outbox and handled inbox
    rows, which grow with every message, are left out."""
    o, i, x = t.outbox.c, t.inbound_messages.c, t.exceptions.c
    inbox_status = case((i.parked_at.is_(None), "unprocessed"), else_="parked")
    incident_status = case((x.resolved_at.is_(None), "open"), else_="resolved")
    return union_all(
        select(literal("outbox").label("part"), o.channel.label("k"), o.status.label("status"),
               func.count().label("n"), func.min(o.created_at).label("oldest"))
        .where(o.status.in_(OUTBOX_WAITING)).group_by(o.channel, o.status),
        select(literal("inbox"), i.platform, inbox_status, func.count(), func.min(i.received_at))
        .where(i.processed_at.is_(None)).group_by(i.platform, inbox_status),
        select(literal("incidents"), x.kind, incident_status, func.count(), func.min(x.opened_at))
        .group_by(x.kind, incident_status),
    )


class StoreGauges:
    """A prometheus collector of database gauges: refreshed by `refresh` (async, cached), read by `collect`."""

    def __init__(self, *, cache_s: float = 2.0, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] = utcnow) -> None:
        self.cache_s = cache_s
        self.clock, self.wall = clock, wall
        self.channels: set[str] = set()  # channels with a sender here: shown at 0 when nothing waits
        self.queries = 0  # how many times the database was read (tests)
        self._snapshot: Snapshot | None = None
        self._read_at: float | None = None
        self._ok = True
        self._lock = asyncio.Lock()

    async def refresh(self, db: Database) -> None:
        """Read the database unless the last read is younger than `cache_s`; concurrent scrapes share one read."""
        if self._fresh():
            return
        async with self._lock:
            if self._fresh():
                return
            started = time.perf_counter()
            try:
                async with db.engine.connect() as conn:
                    rows = (await conn.execute(backlog_query())).all()
            except Exception as err:  # a scrape reports the database as down; it does not fail
                log.warning("metrics: the backlog query failed (%s)", type(err).__name__)
                self._snapshot, self._ok = None, False
            else:
                snap = Snapshot(query_s=time.perf_counter() - started)
                parts = {"outbox": snap.outbox, "inbox": snap.inbox, "incidents": snap.incidents}
                for part, key, status, count, oldest in rows:
                    parts[part][(key, status)] = (int(count), oldest)
                self._snapshot, self._ok = snap, True
            self.queries += 1
            self._read_at = self.clock()

    def _fresh(self) -> bool:
        return self._read_at is not None and self.clock() - self._read_at < self.cache_s

    def describe(self) -> Iterable[Metric]:
        return []  # families depend on the snapshot; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("orderbot_metrics_database_up",
                               "1 when the last backlog query at scrape time succeeded, else 0")
        up.add_metric([], 1.0 if self._ok else 0.0)
        yield up
        snap = self._snapshot
        if snap is None:
            return
        took = GaugeMetricFamily("orderbot_metrics_database_query_seconds", "How long the last backlog query took")
        took.add_metric([], snap.query_s)
        yield took
        yield from self._outbox(snap)
        yield from self._inbox(snap)
        yield from self._incidents(snap)

    def _age(self, oldest: datetime | None) -> float:
        return 0.0 if oldest is None else max(0.0, (self.wall() - oldest).total_seconds())

    def _outbox(self, snap: Snapshot) -> Iterator[Metric]:
        rows = GaugeMetricFamily("orderbot_outbox_rows", "Outbox rows waiting (pending) or given up (dead), by channel",
                                 labels=["channel", "status"])
        age = GaugeMetricFamily("orderbot_outbox_oldest_pending_age_seconds",
                                "Age of the oldest pending outbox row, by channel (0 when none waits)",
                                labels=["channel"])
        for channel in sorted(self.channels | {k for k, _ in snap.outbox}):
            for status in OUTBOX_WAITING:
                rows.add_metric([channel, status], snap.outbox.get((channel, status), (0, None))[0])
            age.add_metric([channel], self._age(snap.outbox.get((channel, "pending"), (0, None))[1]))
        yield rows
        yield age

    def _inbox(self, snap: Snapshot) -> Iterator[Metric]:
        rows = GaugeMetricFamily("orderbot_inbox_rows",
                                 "Inbound messages not yet handled (unprocessed) or given up (parked), by platform",
                                 labels=["platform", "status"])
        age = GaugeMetricFamily("orderbot_inbox_oldest_unprocessed_age_seconds",
                                "Age of the oldest unprocessed inbound message, by platform", labels=["platform"])
        for platform in sorted({k for k, _ in snap.inbox}):
            for status in INBOX_STATUSES:
                rows.add_metric([platform, status], snap.inbox.get((platform, status), (0, None))[0])
            age.add_metric([platform], self._age(snap.inbox.get((platform, "unprocessed"), (0, None))[1]))
        yield rows
        yield age

    def _incidents(self, snap: Snapshot) -> Iterator[Metric]:
        opened = CounterMetricFamily("orderbot_incidents_opened", "Incidents (异常) ever opened, by kind",
                                     labels=["kind"])
        still = GaugeMetricFamily("orderbot_incidents_open", "Incidents (异常) open now, by kind", labels=["kind"])
        age = GaugeMetricFamily("orderbot_incidents_oldest_open_age_seconds",
                                "Age of the oldest open incident, by kind (0 when none is open)", labels=["kind"])
        for kind in sorted({k for k, _ in snap.incidents}):
            open_n, oldest = snap.incidents.get((kind, "open"), (0, None))
            opened.add_metric([kind], open_n + snap.incidents.get((kind, "resolved"), (0, None))[0])
            still.add_metric([kind], open_n)
            age.add_metric([kind], self._age(oldest))
        yield opened
        yield still
        yield age
