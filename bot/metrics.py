"""What /metrics exposes: this process's latencies and counters, and the database's backlogs read at scrape time.

One `Metrics` per app, on its own registry (two apps in one process, as in tests, do not mix their counts):
- process metrics: callback and command latency histograms, transitions, refusals, deliveries by result, job runs;
  each replica exposes its own, so sum them across replicas (`sum by (route) (rate(...))`);
- database gauges (`StoreGauges`): outbox, inbox and incident rows, from one grouped query cached for
  `cache_s`, so a scrape never hammers the database; every replica reports the same values (use `max by`).

Labels are bounded sets named in code (route, command, channel, status, platform, kind, job_name): never an
order number, a user id or anything a sender typed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from sqlalchemy import case, func, literal, select, union_all

from domain.clock import utcnow
from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.delivery.dispatcher import OnDead, OutboxRow, Sender
from integrations.delivery.rows import DeferDelivery, LostClaim, PermanentDelivery

log = logging.getLogger(__name__)

# Seconds. The chat step's target is p99 < 200 ms and WeCom gives a callback 5 s: both are bucket edges.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
# The platform callbacks, by the path aiohttp matched: the route label is one of these names.
CALLBACK_ROUTES = {
    "/wecom/callback": "wecom",
    "/dingtalk/callback": "dingtalk",
    "/dingtalk/card/callback": "dingtalk_card",
    "/channels/kuaidi100/callback": "kuaidi100",
    "/channels/douyin/callback": "douyin",
}
OUTBOX_WAITING = ("pending", "dead", "unconfigured", "skipped")  # delivered rows are history (counted by
# orderbot_deliveries_total); unconfigured: SMS rows with no provider set up; skipped: opted out or too old
INBOX_STATUSES = ("unprocessed", "parked")
DELIVERY_RESULTS = ("sent", "retry", "dead", "deferred", "skipped")


class Metrics:
    """The process's metrics, on their own registry; implements handlers.metrics.Observer."""

    def __init__(self, *, cache_s: float = 2.0, process: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        if process:  # memory, CPU, open files, GC, Python version of this replica
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        r = self.registry
        self.callback_seconds = Histogram(
            "orderbot_callback_duration_seconds", "Time to answer a platform callback (the acknowledgement)",
            ["route", "code"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.command_seconds = Histogram(
            "orderbot_command_duration_seconds", "Time to handle one inbound chat command or push through the bus",
            ["command"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.transitions_total = Counter(
            "orderbot_transitions_total", "Lifecycle transitions done", ["entity", "trigger"], registry=r
        )
        self.refused_total = Counter(
            "orderbot_commands_refused_total", "Commands refused by the domain", ["command", "code"], registry=r
        )
        self.anomalies_total = Counter(
            "orderbot_state_jump_anomalies_total",
            "Triggers refused because they are not legal from the current state", registry=r,
        )
        self.deliveries_total = Counter(
            "orderbot_deliveries_total",
            "Outbox delivery outcomes: sent, retry (a failed attempt), dead (row given up), deferred (rate limit), "
            "skipped (the row left this process)", ["channel", "result"], registry=r,
        )
        self.job_last_success = Gauge(
            "orderbot_job_last_success_timestamp_seconds", "When a scheduled job last succeeded on this replica",
            ["job_name"], registry=r,
        )
        self.job_interval = Gauge(
            "orderbot_job_interval_seconds", "How often a scheduled job is due", ["job_name"], registry=r
        )
        self.job_runs_total = Counter(
            "orderbot_job_runs_total", "Scheduled job runs on this replica by result (ok, failed)",
            ["job_name", "result"], registry=r,
        )
        self.store = StoreGauges(cache_s=cache_s)
        r.register(self.store)

    # --- handlers.metrics.Observer ---

    def transitions(self, entity: str, trigger: str, count: int = 1) -> None:
        self.transitions_total.labels(entity, trigger).inc(count)

    def refused(self, command: str, code: str) -> None:
        self.refused_total.labels(command, code).inc()

    def state_jump_anomaly(self) -> None:
        self.anomalies_total.inc()

    def command_handled(self, command: str, seconds: float) -> None:
        self.command_seconds.labels(command).observe(seconds)

    # --- what bot/ wires ---

    def callback_timing(self) -> Middleware:
        """Middleware: the platform callbacks' answer time by route and status code."""

        children: dict[tuple[str, int], Any] = {}  # the labelled child per route and code, looked up once

        @web.middleware
        async def timed(request: web.Request, handler: Handler) -> web.StreamResponse:
            resource = getattr(request.match_info.route, "resource", None)
            route = CALLBACK_ROUTES.get(resource.canonical) if resource is not None else None
            if route is None:
                return await handler(request)
            started, code = time.perf_counter(), 500
            try:
                response = await handler(request)
                code = response.status
                return response
            except web.HTTPException as answered:
                code = answered.status
                raise
            finally:
                key = (route, code)
                child = children.get(key)
                if child is None:
                    child = children[key] = self.callback_seconds.labels(route, str(code))
                child.observe(time.perf_counter() - started)

        return timed

    def counting(self, senders: Mapping[str, Sender], on_dead: OnDead | None) -> tuple[dict[str, Sender], OnDead]:
        """The dispatcher's senders and dead-row hook, counting each outcome by channel."""
        for channel in senders:
            for result in DELIVERY_RESULTS:
                self.deliveries_total.labels(channel, result)  # present at 0 from the start: rate() sees the first
        self.store.channels.update(senders)
        counted: dict[str, Sender] = {
            channel: CountingSender(sender, self.deliveries_total) for channel, sender in senders.items()
        }

        async def dead(row: OutboxRow) -> None:
            self.deliveries_total.labels(row.channel, "dead").inc()
            if on_dead is not None:
                await on_dead(row)

        return counted, dead

    def job_scheduled(self, job_name: str, every_s: float) -> None:
        self.job_interval.labels(job_name).set(every_s)

    def job_ran(self, job_name: str, ok: bool, at: float | None = None) -> None:
        self.job_runs_total.labels(job_name, "ok" if ok else "failed").inc()
        if ok:
            self.job_last_success.labels(job_name).set(time.time() if at is None else at)


class CountingSender:
    """Counts what the wrapped sender's attempt came to; the dispatcher still decides what follows."""

    def __init__(self, sender: Sender, counter: Counter) -> None:
        self.sender = sender
        self.counter = counter

    async def deliver(self, row: OutboxRow) -> None:
        result = "retry"
        try:
            await self.sender.deliver(row)
            result = "sent"
        except DeferDelivery:
            result = "deferred"
            raise
        except LostClaim:
            result = "skipped"
            raise
        except PermanentDelivery:
            result = ""  # the row is dead: counted once, by the dead-row hook
            raise
        finally:
            if result:
                self.counter.labels(row.channel, result).inc()


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
