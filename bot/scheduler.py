"""Scheduled jobs: APScheduler 3 on the event loop, explicit job ids, run only by the replica that leads.

Every replica schedules every job on the same instants (intervals counted from one anchor), and a tick
runs only where the jobs lock is held (integrations/db/lease.py: a PostgreSQL advisory lock on a connection
the holder keeps open; SQLite: the one process). Each tick is also marked in the database before it runs,
so the same tick never runs twice, even if leadership changes hands in the middle of one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import delete

from bot.channels import ChannelClients, channel_clients
from bot.keys import BUS, DB, METRICS, SETTINGS
from bot.metrics import Metrics
from config.settings import Settings
from domain import commands as c
from domain.clock import utcnow
from domain.consistency import windows_due
from domain.order_lifecycle import ORDER_LIFECYCLE
from handlers.bus import Deps, MessageBus
from handlers.consistency import count_sources
from handlers.safety_stock import policy_of
from integrations.channels.douyin.client import DouyinClient
from integrations.channels.k3.pull import K3Pull
from integrations.db import tables as t
from integrations.db.channel_cursors import ChannelCursors
from integrations.db.engine import Database
from integrations.db.lease import AdvisoryLock, Leader, SingleProcess
from integrations.db.marks import mark_once
from integrations.logistics.kuaidi100 import Kuaidi100Client, courier_http

log = logging.getLogger(__name__)
LOCK_NAME = "scheduler"
ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)  # ticks are counted from here, so every replica ticks at the same instants
TICK_MARKS_KEPT = timedelta(days=2)  # how long a tick's mark stays (it only has to outlive the tick)
STATE_LABELS = {state: spec.label for state, spec in ORDER_LIFECYCLE.states.items()}


@dataclass(frozen=True)
class JobEnv:
    """What a job needs; built once per process (or once per `orderbot jobs run`)."""

    db: Database
    bus: MessageBus
    deps: Deps
    settings: Settings
    courier: Kuaidi100Client
    channels: ChannelClients = ChannelClients()


JobRun = Callable[[JobEnv], Awaitable[str]]  # returns a one-line summary for the log and the CLI


@dataclass(frozen=True)
class JobSpec:
    id: str
    schedule: str  # how often, as people read it
    description: str  # what it does, in Chinese
    every: timedelta
    run: JobRun

    def slot(self, at: datetime) -> datetime:
        """The tick `at` falls in: the same instant on every replica, so a tick has one name everywhere."""
        return ANCHOR + ((at - ANCHOR) // self.every) * self.every


async def _logistics_sweep(env: JobEnv) -> str:
    cfg = env.settings.logistics
    report = await env.bus.handle(c.SweepLogistics(batch_size=cfg.batch_size, concurrency=cfg.concurrency))
    return str(report.summary())


async def _stuck_orders(env: JobEnv) -> str:
    told = await env.bus.handle(c.FlagStuckOrders(tuple(env.settings.sla.minutes.items())))
    return f"{told} 个卡单已提醒"


async def _escalate_exceptions(env: JobEnv) -> str:
    told = await env.bus.handle(c.EscalateIncidents(env.settings.escalation.ack_minutes))
    return f"{told} 条异常已升级给运营经理"


async def _safety_stock(env: JobEnv) -> str:
    report = await env.bus.handle(c.EvaluateSafetyStock(policy_of(**env.settings.safety_stock.model_dump())))
    return str(report.summary())


async def _douyin_catch_up(env: JobEnv) -> str:
    from bot.channels_douyin import catch_up_command

    report = await env.bus.handle(catch_up_command(env.settings.douyin))
    return str(report.summary())


async def _k3_pull(env: JobEnv) -> str:
    if env.channels.k3 is None:
        return "未配置 K3（ORDERBOT_K3__SERVER_URL 等），跳过"
    cfg = env.settings.k3
    pull = K3Pull(env.channels.k3, ChannelCursors(env.db), env.bus.handle, page_size=cfg.page_size,
                  first_since=env.deps.now - timedelta(days=cfg.first_pull_days), clock=env.deps.clock,
                  concurrency=cfg.concurrency)
    return (await pull.run()).summary()


async def _consistency(env: JobEnv) -> str:
    cfg = env.settings.consistency
    counters = list(env.channels.counters)
    feed = env.bus.deps.douyin
    if feed is not None and isinstance(feed.orders, DouyinClient):  # the shop's own count of its orders
        counters.append(feed.orders)
    if not counters:
        return "没有配置任何渠道，跳过"
    hour, day = windows_due(env.deps.now, timedelta(minutes=cfg.lag_minutes))
    scores = []
    for window in (day, hour):  # the day first: the hour's warning names the day's score
        sources = await count_sources(counters, window)
        result = await env.bus.handle(c.ScoreConsistency(window, sources, cfg.threshold, cfg.shown_ids,
                                                         alert=window is hour))
        scores.append(f"{window.label()} {result.score:.1f}%")
    return "一致性得分 " + "，".join(scores)


def job_specs(settings: Settings) -> list[JobSpec]:
    jobs = settings.jobs

    def every(minutes: float) -> dict[str, object]:
        return {"schedule": f"每 {minutes:g} 分钟", "every": timedelta(minutes=minutes)}

    sla = "/".join(f"{STATE_LABELS.get(state, state)}{m}分" for state, m in settings.sla.minutes.items())
    return [
        JobSpec(
            id="logistics_sweep", run=_logistics_sweep, **every(jobs.logistics_sweep_minutes),  # type: ignore[arg-type]
            description="物流仲裁：查询待出库/已发货/运输中订单的快递轨迹，推进揽收与签收；"
            "签收早于出库等冲突记为严重异常、高亮推送主管并冻结该客户结算",
        ),
        JobSpec(
            id="stuck_orders", run=_stuck_orders, **every(jobs.stuck_orders_minutes),  # type: ignore[arg-type]
            description=f"卡单提醒：订单在某状态停留超时（{sla}）时提醒负责人，每单每状态只提醒一次",
        ),
        JobSpec(
            id="escalate_exceptions", run=_escalate_exceptions,
            **every(jobs.escalate_exceptions_minutes),  # type: ignore[arg-type]
            description=f"异常升级：超过 {settings.escalation.ack_minutes} 分钟无人确认的异常推送给运营经理",
        ),
        JobSpec(
            id="safety_stock", run=_safety_stock, **every(jobs.safety_stock_minutes),  # type: ignore[arg-type]
            description=f"动态安全库存：预测 A 类 SKU 未来 48 小时销量，连续 {settings.safety_stock.consecutive} 次"
            f"超过补货阈值 {settings.safety_stock.over_ratio:.0%} 时推送采购补货建议并冻结非核心渠道；"
            f"周转超过 {settings.safety_stock.slow_mover_days:.0f} 天的滞销品每周提醒主管一次",
        ),
        *([JobSpec(
            id="douyin_catch_up", run=_douyin_catch_up, **every(settings.douyin.catch_up_minutes),  # type: ignore[arg-type]
            description="抖店补单：按更新时间从游标起拉取 order.searchList，补上漏收的推送（幂等，不重复建单）",
        )] if settings.douyin.enabled else []),
        JobSpec(
            id="consistency", run=_consistency, **every(jobs.consistency_minutes),  # type: ignore[arg-type]
            description=f"跨系统一致性：按小时和按天比对各渠道系统与订单助手的订单数（最小值÷最大值×100），"
            f"低于 {settings.consistency.threshold:g}% 时黄色预警运营经理并列出缺失单号，恢复后通知",
        ),
        *([JobSpec(
            id="k3_pull", run=_k3_pull, **every(settings.k3.pull_minutes),  # type: ignore[arg-type]
            description="金蝶K3 拉单：按修改时间分页拉取已审核的销售订单（SAL_SaleOrder），入库后才移动游标",
        )] if settings.k3.configured else []),
    ]


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobScheduler:
    def __init__(self, env: JobEnv, leader: Leader, specs: Sequence[JobSpec],
                 clock: Callable[[], datetime] = utcnow, metrics: Metrics | None = None) -> None:
        self.env, self.leader, self.clock = env, leader, clock
        self.metrics = metrics  # each run's result and last success, for /metrics
        self.specs = {spec.id: spec for spec in specs}
        self.scheduler = AsyncIOScheduler()
        self.runs: dict[str, int] = dict.fromkeys(self.specs, 0)  # ticks this replica ran, per job
        self._leading: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Schedule every job and start keeping (or trying for) the jobs lock; needs a running event loop."""
        for spec in self.specs.values():
            trigger = IntervalTrigger(seconds=spec.every.total_seconds(), start_date=ANCHOR, timezone=UTC)
            self.scheduler.add_job(
                self.tick, trigger, args=[spec.id], id=spec.id, name=spec.description,
                max_instances=1, coalesce=True, misfire_grace_time=60, replace_existing=True,
            )
            if self.metrics is not None:
                self.metrics.job_scheduled(spec.id, spec.every.total_seconds())
        self._leading = asyncio.get_running_loop().create_task(self.leader.run(), name="job-leader")
        self.scheduler.start()

    async def tick(self, job_id: str, slot: datetime | None = None) -> bool:
        """One scheduled run: only on the leader, once per tick. Returns whether this replica ran the job."""
        if not await self.leader.holds():
            log.debug("job %s: another replica leads, skipped", job_id)
            return False
        spec = self.specs[job_id]
        slot = slot or spec.slot(self.clock())
        if not await self._claim(job_id, slot):
            log.warning("job %s tick %s: already ran on another replica, skipped", job_id, slot.isoformat())
            return False
        started = time.perf_counter()
        try:
            summary = await spec.run(self.env)
        except Exception:
            log.exception("job %s tick %s failed", job_id, slot.isoformat())
            self._ran(job_id, ok=False)
            return True
        finally:
            self.runs[job_id] += 1
        self._ran(job_id, ok=True)
        log.info("job %s tick %s done by %s in %.1f s: %s", job_id, slot.isoformat(), self.leader.holder,
                 time.perf_counter() - started, summary)
        return True

    def _ran(self, job_id: str, *, ok: bool) -> None:
        if self.metrics is not None:
            self.metrics.job_ran(job_id, ok)

    async def _claim(self, job_id: str, slot: datetime) -> bool:
        """Mark the tick; False if it was marked before (it ran, or runs, elsewhere). Old marks go."""
        now = self.clock()
        marks = t.alert_marks
        async with self.env.db.engine.begin() as conn:
            fresh = await mark_once(conn, [f"job:{job_id}:{slot.isoformat()}"], now)
            await conn.execute(delete(marks).where(marks.c.key.startswith(f"job:{job_id}:", autoescape=True),
                                                   marks.c.created_at < now - TICK_MARKS_KEPT))
        return bool(fresh)

    async def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._leading is not None:
            self._leading.cancel()
            with suppress(asyncio.CancelledError):
                await self._leading
        await self.leader.release()


@asynccontextmanager
async def job_env(settings: Settings, db: Database, bus: MessageBus, deps: Deps) -> AsyncIterator[JobEnv]:
    """The courier client's connection pool lives as long as the env; the bus's sweep polls through it."""
    cfg = settings.logistics
    async with courier_http(cfg.concurrency, cfg.timeout_s) as http, channel_clients(settings) as channels:
        courier = Kuaidi100Client(
            http, api_base=cfg.api_base, customer=cfg.customer, key=cfg.key.get_secret_value(), default_carrier=cfg.default_carrier
        )
        bus.deps.courier = courier
        try:
            async with douyin_feed(settings, db, bus):
                yield JobEnv(db, bus, deps, settings, courier, channels)
        finally:
            bus.deps.courier = None


@asynccontextmanager
async def douyin_feed(settings: Settings, db: Database, bus: MessageBus) -> AsyncIterator[None]:
    """`orderbot jobs run` has no app: the Douyin client lives as long as the job env (the app's is kept)."""
    if not settings.douyin.enabled or bus.deps.douyin is not None:
        yield
        return
    import httpx

    from bot.channels_douyin import client_for
    from integrations.channels.douyin import DouyinFeed
    from integrations.db.channel_cursors import ChannelCursors
    from integrations.db.tokens import DbTokenCache

    cfg = settings.douyin
    async with httpx.AsyncClient(timeout=httpx.Timeout(cfg.timeout_s)) as http:
        bus.deps.douyin = DouyinFeed(client_for(cfg, http, DbTokenCache(db)), ChannelCursors(db), store=cfg.store or None)
        try:
            yield
        finally:
            bus.deps.douyin = None


def leader_for(settings: Settings, db: Database) -> Leader:
    holder = settings.jobs.holder or default_holder()
    if db.is_sqlite:
        return SingleProcess(holder)
    return AdvisoryLock(settings.database_url, LOCK_NAME, holder, retry_s=settings.jobs.leader_retry_s)


SCHEDULER = web.AppKey("scheduler", JobScheduler)


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    """The service's scheduler (`orderbot serve` only): started with the app, the jobs lock released at shutdown."""
    settings, db, bus = app[SETTINGS], app[DB], app[BUS]
    async with job_env(settings, db, bus, bus.deps) as env:
        scheduler = JobScheduler(env, leader_for(settings, db), job_specs(settings), metrics=app[METRICS])
        app[SCHEDULER] = scheduler
        scheduler.start()
        yield
        await scheduler.shutdown()
