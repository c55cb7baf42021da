"""Kuaidi100 push callback: verify the sign, store the waybill's latest report, answer success at once.

Also the outbound half of the subscription: the HTTP client and the outbox sender for channel "courier",
present only when LOGISTICS__KEY, LOGISTICS__CALLBACK_URL and LOGISTICS__SALT are all set.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
from aiohttp import web

from bot.jsonio import dumps
from bot.keys import BUS, DB, SETTINGS
from handlers.courier_tracks import record_push
from integrations.delivery.dispatcher import Sender
from integrations.logistics.kuaidi100_push import (
    CALLBACK_OK,
    CHANNEL,
    BadPush,
    CourierSubscribeSender,
    Kuaidi100Subscriber,
    parse_push,
    sign_ok,
)

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
SUBSCRIBER = web.AppKey("kuaidi100_subscriber", Kuaidi100Subscriber)


def _refuse(status: int, message: str) -> web.Response:
    return web.json_response({"result": False, "returnCode": str(status), "message": message}, status=status,
                             dumps=dumps)


@routes.post("/channels/kuaidi100/callback")
async def callback(request: web.Request) -> web.Response:
    form = await request.post()
    param, sign = form.get("param"), form.get("sign")
    if not isinstance(param, str) or not isinstance(sign, str):
        return _refuse(400, "缺少 param 或 sign")
    if not sign_ok(param, sign, request.app[SETTINGS].logistics.salt):
        log.warning("kuaidi100 callback with a bad sign from %s", request.remote)
        return _refuse(403, "签名错误")
    try:
        push = parse_push(param)
    except BadPush as err:
        log.warning("kuaidi100 callback refused: %s", err)
        return _refuse(400, "无法解析推送内容")
    await record_push(request.app[DB], push, request.app[BUS].deps)
    return web.json_response(CALLBACK_OK, dumps=dumps)


async def courier_ctx(app: web.Application) -> AsyncIterator[None]:
    """The subscription client's connection pool, when push tracking is configured."""
    cfg = app[SETTINGS].logistics
    if not (cfg.key and cfg.callback_url and cfg.salt):
        yield
        return
    async with httpx.AsyncClient(timeout=httpx.Timeout(cfg.timeout_s)) as http:
        app[SUBSCRIBER] = Kuaidi100Subscriber(
            http, api_base=cfg.api_base, key=cfg.key, callback_url=cfg.callback_url, salt=cfg.salt,
            default_carrier=cfg.default_carrier,
        )
        yield


def courier_senders(app: web.Application) -> dict[str, Sender]:
    """Channel "courier" when configured; otherwise its rows wait in the outbox (see /metrics)."""
    subscriber = app.get(SUBSCRIBER)
    return {CHANNEL: CourierSubscribeSender(subscriber)} if subscriber is not None else {}
