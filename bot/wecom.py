"""WeCom callback routes: verify, decrypt, de-duplicate, answer 200 at once, then work."""

from __future__ import annotations

import logging
import time

from aiohttp import web

from bot.keys import INBOUND_QUEUE, PACER, SETTINGS
from bot.wecom_protocol import CallbackRejected, open_callback, to_inbound, verify_url

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


def _params(request: web.Request, *names: str) -> list[str]:
    missing = [n for n in names if not request.query.get(n)]
    if missing:
        raise CallbackRejected(f"missing query parameters: {', '.join(missing)}")
    return [request.query[n] for n in names]


def _refuse(request: web.Request, err: CallbackRejected) -> web.Response:
    log.warning("wecom callback refused (%s) from %s: %s", err.status, request.remote, err.reason)
    return web.Response(status=err.status, text=err.reason)


@routes.get("/wecom/callback")
async def verify(request: web.Request) -> web.Response:
    try:
        signature, timestamp, nonce, echostr = _params(request, "msg_signature", "timestamp", "nonce", "echostr")
        echo = verify_url(request.app[SETTINGS].wecom, signature, timestamp, nonce, echostr, time.time())
    except CallbackRejected as err:
        return _refuse(request, err)
    return web.Response(text=echo)


@routes.post("/wecom/callback")
async def callback(request: web.Request) -> web.Response:
    try:
        signature, timestamp, nonce = _params(request, "msg_signature", "timestamp", "nonce")
        body = await request.read()
        fields = open_callback(request.app[SETTINGS].wecom, signature, timestamp, nonce, body, time.time())
    except CallbackRejected as err:
        return _refuse(request, err)
    message = to_inbound(fields)
    if message is not None:  # the inbound queue refuses a message id or sender past its limit (400)
        async with request.app[PACER].acknowledging():
            await request.app[INBOUND_QUEUE].accept(message)
    return web.Response(text="")
