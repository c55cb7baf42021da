"""What /metrics exposes: this process's latencies and counters, and the database's backlogs read at scrape time.

One `Metrics` per app, on its own registry (two apps in one process, as in tests, do not mix their counts):
- process metrics: callback and command latency histograms, transitions, refusals, deliveries by result, job runs;
  each replica exposes its own, so sum them across replicas (`sum by (route) (rate(...))`);
- database gauges (`StoreGauges`, in bot/metrics_backlog.py): outbox, inbox and incident rows, from one grouped
  query cached for `cache_s`, so a scrape never hammers the database; every replica reports the same values
  (use `max by`).

Labels are bounded sets named in code (route, command, channel, status, platform, kind, job_name): never an
order number, a user id or anything a sender typed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from bot.metrics_backlog import StoreGauges
from integrations.delivery.dispatcher import OnDead, OutboxRow, Sender
from integrations.delivery.rows import DeferDelivery, LostClaim, PermanentDelivery

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
