"""Douyin shop push callback: verify app-id and event-sign, store each element in the inbox, answer success.

An element is stored under (platform "douyin", msg_id) before the answer, so a re-sent batch adds nothing and
an acknowledged push survives a crash: the inbound queue (or, after a restart, its sweep) turns it into
`ApplyDouyinPush`. Unknown tags are acknowledged and logged; a broken element is skipped or parked, never
failing the others. The body limit is HTTP__MAX_BODY_BYTES (413, nothing stored).

Also the channel's wiring: the API client (with the shop's token in the shared token store) handed to the
handlers as `deps.douyin`, and the catch-up job's run.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
from aiohttp import web

from bot.jsonio import dumps
from bot.keys import BUS, DB, INBOUND_QUEUE, PACER, SETTINGS
from config.settings import DouyinSettings
from domain.chat import InboundMessage
from handlers.douyin_orders import ApplyDouyinPush, CatchUpDouyinOrders
from integrations.channels.douyin import DouyinFeed
from integrations.channels.douyin.client import DouyinClient
from integrations.channels.douyin.push import CALLBACK_OK, CHANNEL, BadPush, split_batch
from integrations.channels.douyin.signature import push_sign_ok
from integrations.db.channel_cursors import ChannelCursors
from integrations.db.tokens import DbTokenCache

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
CLIENT = web.AppKey("douyin_client", DouyinClient)
PUSH_KIND = "douyin_push"


def _refuse(status: int, message: str) -> web.Response:
    # any answer but {"code": 0} makes Douyin send again; a refusal says why, for whoever reads the push log
    return web.json_response({"code": status, "msg": message}, status=status, dumps=dumps)


@routes.post("/channels/douyin/callback")
async def callback(request: web.Request) -> web.Response:
    cfg = request.app[SETTINGS].douyin
    if not cfg.enabled:
        return _refuse(404, "抖店渠道未配置")
    body = await request.read()
    if request.headers.get("app-id", "") != cfg.app_key:
        log.warning("douyin push with an unknown app-id from %s", request.remote)
        return _refuse(403, "app-id 不匹配")
    if not push_sign_ok(cfg.app_key, body, cfg.app_secret.get_secret_value(), request.headers.get("event-sign", "")):
        log.warning("douyin push with a bad event-sign from %s", request.remote)
        return _refuse(403, "签名错误")
    try:
        elements, skipped = split_batch(body)
    except BadPush as err:
        log.warning("douyin push refused from %s: %s", request.remote, err)
        return _refuse(400, str(err))
    for item in skipped:
        level = logging.INFO if item.reason == "tag not handled" else logging.WARNING
        log.log(level, "douyin push element %d (tag %r) skipped: %s", item.index, item.tag, item.reason)
    if elements:
        queue = request.app[INBOUND_QUEUE]
        async with request.app[PACER].acknowledging():
            for element in elements:
                await queue.accept(inbound(cfg.app_key, element.msg_id, element.text()))
    return web.json_response(CALLBACK_OK, dumps=dumps)


def inbound(app_key: str, msg_id: str, text: str) -> InboundMessage:
    return InboundMessage(platform=CHANNEL, sender=app_key, kind=PUSH_KIND, text=text, message_id=msg_id)


def push_command(msg: InboundMessage) -> ApplyDouyinPush:
    """The inbound queue's command for a stored Douyin element."""
    return ApplyDouyinPush(message_id=msg.message_id, element=msg.text)


def client_for(cfg: DouyinSettings, http: httpx.AsyncClient, token_cache: Any) -> DouyinClient:
    return DouyinClient(http, api_base=cfg.api_base, app_key=cfg.app_key,
                        app_secret=cfg.app_secret.get_secret_value(), shop_id=cfg.shop_id, token_cache=token_cache)


async def douyin_ctx(app: web.Application) -> AsyncIterator[None]:
    """The API client's connection pool, and `deps.douyin`, when the channel is configured."""
    cfg = app[SETTINGS].douyin
    if not cfg.enabled:
        yield
        return
    async with httpx.AsyncClient(timeout=httpx.Timeout(cfg.timeout_s)) as http:
        client = client_for(cfg, http, DbTokenCache(app[DB]))
        app[CLIENT] = client
        deps = app[BUS].deps
        deps.douyin = DouyinFeed(client, ChannelCursors(app[DB]), store=cfg.store or None)
        yield
        deps.douyin = None


def catch_up_command(cfg: DouyinSettings) -> CatchUpDouyinOrders:
    return CatchUpDouyinOrders(first_lookback=timedelta(hours=cfg.first_lookback_hours),
                               overlap=timedelta(seconds=cfg.overlap_s), lag=timedelta(seconds=cfg.lag_s))
