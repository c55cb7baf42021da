"""DingTalk robot callback route: verify the sign, parse safely, bind the sign to this one body, store in the
inbox, answer 200 at once. What is checked, and why, is in bot/dingtalk_protocol.py.

Stream mode (no public callback URL) hands the same robot payloads to `accept_payload`; see
`dingtalk_stream_ctx`, which is not wired by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from bot.dingtalk_protocol import CallbackRejected, check_robot, parse_body, to_inbound, verify_sign
from bot.inbound_queue import InboundQueue
from bot.keys import DB, INBOUND_QUEUE, PACER, SETTINGS
from config.settings import DingtalkSettings
from domain.clock import utcnow
from integrations.dingtalk.replay import ROBOT, Use, claim_signature

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.post("/dingtalk/callback")
async def callback(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS].dingtalk
    try:
        sign_header = request.headers.get("sign")
        verify_sign(settings.app_secret.get_secret_value(), request.headers.get("timestamp"), sign_header, int(time.time() * 1000),
                    settings.replay_window_s * 1000)
        body = await request.read()
        payload = parse_body(body)
        check_robot(payload, settings.app_key)
        use = await claim_signature(request.app[DB], ROBOT, str(sign_header), body, at=utcnow(),
                                    window_s=settings.replay_window_s)
        if use is Use.OTHER_BODY:  # a captured timestamp+sign carrying a body of someone's choosing
            raise CallbackRejected("this timestamp and sign were used by another message", status=403)
    except CallbackRejected as err:
        log.warning("dingtalk callback refused (%s) from %s: %s", err.status, request.remote, err.reason)
        return web.json_response({"error": err.reason}, status=err.status)
    async with request.app[PACER].acknowledging():  # verified: from here on it counts as in flight
        await accept_payload(request.app[INBOUND_QUEUE], payload, settings)
    return web.json_response({})


async def accept_payload(inbound_queue: InboundQueue, payload: dict[str, Any], settings: DingtalkSettings) -> None:
    """A verified robot payload (HTTP callback or stream) into the inbox; what the bot ignores is dropped."""
    message = to_inbound(payload, settings.session_webhook_hosts)
    if message is not None:
        await inbound_queue.accept(message)


async def dingtalk_stream_ctx(app: web.Application) -> AsyncIterator[None]:
    """Receive robot messages over DingTalk's stream gateway instead of HTTP callbacks.

    Opt-in (`app.cleanup_ctx.append(dingtalk_stream_ctx)` after inbound_queue_ctx); needs the optional
    dingtalk-stream package. Untested against the real gateway.
    """
    from integrations.dingtalk.stream import stream_client

    settings = app[SETTINGS].dingtalk
    inbound_queue = app[INBOUND_QUEUE]

    async def on_message(payload: dict[str, Any]) -> None:
        try:
            check_robot(payload, settings.app_key)
        except CallbackRejected as err:
            log.warning("dingtalk stream message dropped: %s", err.reason)
            return
        await accept_payload(inbound_queue, payload, settings)

    client = stream_client(settings.app_key, settings.app_secret.get_secret_value(), on_message)
    task = asyncio.create_task(client.start())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
