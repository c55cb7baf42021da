"""The aiohttp application factory: one cleanup context per resource, routes composed explicitly."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

import httpx
from aiohttp import web

from bot import (
    api,
    channels_douyin,
    channels_kuaidi100,
    channels_miniprogram,
    dashboard,
    dingtalk,
    dingtalk_cards,
    events,
    health,
    outbound,
    sms,
    stores,
    wecom,
)
from bot.asking import Asking
from bot.edge import edge_guard
from bot.inbound_queue import InboundQueue
from bot.keys import (
    BUS,
    DB,
    DINGTALK_CLIENT,
    DISPATCHER,
    INBOUND_QUEUE,
    METRICS,
    PACER,
    SETTINGS,
    WECOM_CLIENT,
)
from bot.logsafe import work_context
from bot.metrics import Metrics
from bot.pacing import AckPacer, PacedSender
from config.settings import Settings
from domain.aftersale import ApprovalPolicy
from handlers.bootstrap import build_bus
from handlers.bus import Deps
from integrations.db.engine import Database, is_sqlite
from integrations.db.tokens import DbTokenCache
from integrations.delivery.dead_rows import DeadRowWarnings
from integrations.delivery.dead_tasks import both
from integrations.delivery.dingtalk_sender import DingTalkChatSender
from integrations.delivery.dispatcher import OutboxDispatcher, Sender
from integrations.delivery.fanout import DINGTALK_CHAT, WECOM_CHAT, ChatFanout
from integrations.delivery.limiter import GROUP_ROBOT_LIMITS, RecipientLimiter
from integrations.delivery.wecom_sender import WeComChatSender, WeComGroupSender
from integrations.dingtalk.client import DingTalkClient
from integrations.geo.amap import AmapGeocoder, geo_http
from integrations.wecom.client import WeComClient

log = logging.getLogger(__name__)


def deps_from(settings: Settings) -> Deps:
    return Deps(
        policy=ApprovalPolicy(
            auto_limit_fen=round(settings.refund.auto_approve_limit * 100),
            dual_limit_fen=round(settings.refund.dual_approval_limit * 100),
        ),
        dashboard_link=dashboard.link_maker(settings),
    )


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    db = Database(settings.database_url)
    app[DB] = db
    app[BUS] = build_bus(db, deps_from(settings))
    app[BUS].deps.observer = app[METRICS]
    yield
    await db.dispose()


async def wecom_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS].wecom
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as http:
        app[WECOM_CLIENT] = WeComClient(
            http, api_base=settings.api_base, corp_id=settings.corp_id, secret=settings.secret.get_secret_value(),
            agent_id=settings.agent_id, token_cache=DbTokenCache(app[DB]),
        )
        yield


async def dingtalk_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS].dingtalk
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as http:
        app[DINGTALK_CLIENT] = DingTalkClient(
            http, api_base=settings.api_base, app_key=settings.app_key, app_secret=settings.app_secret.get_secret_value(),
            token_cache=DbTokenCache(app[DB]),
        )
        yield


async def geo_ctx(app: web.Application) -> AsyncIterator[None]:
    """Address changes are checked on Amap when a key is configured; with none they go through unchecked."""
    settings = app[SETTINGS].geo
    if not settings.key:
        log.warning("geo.key is not set: new delivery addresses are not validated")
        yield
        return
    async with geo_http(settings.timeout_s) as http:
        app[BUS].deps.address_validator = AmapGeocoder(http, api_base=settings.api_base, key=settings.key.get_secret_value())
        yield
        app[BUS].deps.address_validator = None


def senders(app: web.Application) -> dict[str, Sender]:
    """Channels with somewhere to go. Rows of other channels wait in the outbox (see /metrics)."""
    wecom_settings = app[SETTINGS].wecom
    if not (wecom_settings.corp_id and wecom_settings.secret):
        return with_dingtalk(app, {})
    db, client, reserve = app[DB], app[WECOM_CLIENT], app[SETTINGS].delivery.urgent_reserve
    return with_dingtalk(app, {
        "chat": WeComChatSender(client, wecom_settings.agent_id, RecipientLimiter(db, urgent_reserve=reserve)),
        "wecom_group": WeComGroupSender(client, RecipientLimiter(db, channel="wecom_group", limits=GROUP_ROBOT_LIMITS,
                                                                  urgent_reserve=0)),  # no urgent robot rows
    })


def with_dingtalk(app: web.Application, wecom_senders: dict[str, Sender]) -> dict[str, Sender]:
    """DingTalk configured: "chat" rows fan out to "wecom_chat" and "dingtalk_chat", one row per platform."""
    settings = app[SETTINGS]
    if not (settings.dingtalk.app_key and settings.dingtalk.app_secret):
        return wecom_senders
    db, wecom_on = app[DB], "chat" in wecom_senders
    result = {channel: sender for channel, sender in wecom_senders.items() if channel != "chat"}
    if wecom_on:
        limiter = RecipientLimiter(db, channel=WECOM_CHAT, urgent_reserve=settings.delivery.urgent_reserve)
        result[WECOM_CHAT] = WeComChatSender(app[WECOM_CLIENT], settings.wecom.agent_id, limiter)
    result[DINGTALK_CHAT] = DingTalkChatSender(app[DINGTALK_CLIENT], cards=dingtalk_cards.interactive_cards(settings.dingtalk),
                                               webhook_hosts=settings.dingtalk.session_webhook_hosts)
    result["chat"] = ChatFanout(db, wecom=wecom_on, dingtalk=True, wake=lambda: app[DISPATCHER].notify())
    return result


async def delivery_ctx(app: web.Application) -> AsyncIterator[None]:
    db, settings = app[DB], app[SETTINGS].delivery
    channels = {**senders(app), **channels_kuaidi100.courier_senders(app),
                **outbound.effect_senders(app)}
    warnings = DeadRowWarnings(db, channels=channels, gather_s=settings.dead_report_gather_s,
                               horizon_s=settings.retry_window_s + 86400)
    tasks_for_people = outbound.dead_tasks(app)
    counted, on_dead = app[METRICS].counting(channels, both(warnings, *tasks_for_people))
    paced = {name: PacedSender(sender, app[PACER].yield_to_acks) for name, sender in counted.items()}
    dispatcher = OutboxDispatcher(
        db, paced, on_dead=on_dead, batch=settings.batch, max_in_flight=settings.max_in_flight,
        retry_window_s=settings.retry_window_s, base_backoff_s=settings.base_backoff_s,
        max_backoff_s=settings.max_backoff_s, breaker_threshold=settings.breaker_threshold,
        breaker_cool_s=settings.breaker_cool_s, breaker_max_cool_s=settings.breaker_max_cool_s,
    )
    app[DISPATCHER] = dispatcher
    stop = asyncio.Event()
    tasks = [asyncio.create_task(dispatcher.run_forever(stop)), asyncio.create_task(warnings.run(stop)),
             *(asyncio.create_task(told.report()) for told in tasks_for_people)]  # rows that died before this start
    yield
    stop.set()
    dispatcher.notify()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)


async def idle_dispatcher_ctx(app: web.Application) -> AsyncIterator[None]:
    counted, on_dead = app[METRICS].counting(
        {**senders(app), **channels_kuaidi100.courier_senders(app),
         **outbound.effect_senders(app)}, both(*outbound.dead_tasks(app)))
    app[DISPATCHER] = OutboxDispatcher(app[DB], counted, on_dead=on_dead)
    yield


async def inbound_queue_ctx(app: web.Application) -> AsyncIterator[None]:
    workers = 1 if app[DB].is_sqlite else 4  # SQLite has one writer at a time anyway
    inbox, ask = app[SETTINGS].inbox, app[SETTINGS].ask
    asking = Asking(app[DB], store_names=ask.store_names, refresh_s=ask.refresh_s, cache_dir=ask.cache_dir)
    await asking.start()
    inbound_queue = InboundQueue(
        app[DB], app[BUS], delivered=app[DISPATCHER].notify, workers=workers, pace=app[PACER].yield_to_acks,
        max_attempts=inbox.max_attempts, retry_delay_s=inbox.retry_delay_s, lease_s=inbox.lease_s,
        sweep_batch=inbox.sweep_batch, commands={channels_douyin.CHANNEL: channels_douyin.push_command},
        asking=asking,
    )
    app[INBOUND_QUEUE] = inbound_queue
    stop = asyncio.Event()  # the sweep: what no live process has under way is queued again, without a restart
    sweeper = asyncio.create_task(inbound_queue.sweep_forever(stop, inbox.sweep_interval_s))
    yield
    stop.set()
    with contextlib.suppress(asyncio.CancelledError):
        await sweeper
    await inbound_queue.stop()


async def startup_objects_frozen(app: web.Application) -> AsyncIterator[None]:
    """What start-up built (modules, settings, clients, statements, the queue and its workers) lives as long as the
    process: it is moved out of the cyclic collector's way (gc.freeze), so each collection scans only what requests
    and work create since. Under a flood of callbacks that made acknowledgements ~20 % cheaper in the first
    seconds. Given back at shutdown (gc.unfreeze), so a process that starts apps again and again (the tests)
    still collects them."""
    gc.freeze()
    yield
    gc.unfreeze()


def create_app(settings: Settings, *, deliver: bool = True, schedule: bool = False) -> web.Application:
    """`deliver=False` leaves the outbox to another process (tests that drive delivery themselves);
    `schedule=True` (only `orderbot serve`) runs the scheduled jobs on whichever replica holds the lease."""
    pacer, metrics = AckPacer(flood_in_flight=0 if is_sqlite(settings.database_url) else 16), Metrics()
    app = web.Application(
        client_max_size=settings.http.max_body_bytes,
        middlewares=[metrics.callback_timing(), work_context, edge_guard(settings.http.body_timeout_s), api.api_errors],
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[PACER] = pacer
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(wecom_ctx)
    app.cleanup_ctx.append(dingtalk_ctx)
    app.cleanup_ctx.append(geo_ctx)
    app.cleanup_ctx.append(channels_kuaidi100.courier_ctx)
    app.cleanup_ctx.append(channels_douyin.douyin_ctx)
    app.cleanup_ctx.append(channels_miniprogram.miniprogram_ctx)
    app.cleanup_ctx.extend(effect.ctx for effect in outbound.EFFECTS)
    app.cleanup_ctx.append(delivery_ctx if deliver else idle_dispatcher_ctx)
    if deliver:
        app.cleanup_ctx.append(events.events_ctx)
    app.cleanup_ctx.append(inbound_queue_ctx)
    if schedule:
        from bot.scheduler import scheduler_ctx

        app.cleanup_ctx.append(scheduler_ctx)
    app.cleanup_ctx.append(startup_objects_frozen)  # last: after everything start-up builds
    app.add_routes(health.routes)
    app.add_routes(api.routes)
    app.add_routes(wecom.routes)
    app.add_routes(dingtalk.routes)
    app.add_routes(dingtalk_cards.routes)
    app.add_routes(channels_kuaidi100.routes)
    app.add_routes(channels_douyin.routes)
    app.add_routes(sms.routes)
    app.add_routes(stores.routes)
    app.add_routes(dashboard.routes)
    app.add_routes(channels_miniprogram.routes)
    return app
