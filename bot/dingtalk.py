"""DingTalk robot callback route: verify the sign, parse safely, store in the inbox, answer 200 at once.

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

from bot.dingtalk_protocol import CallbackRejected, parse_body, to_inbound, verify_sign
from bot.inbound_queue import InboundQueue
from bot.keys import INBOUND_QUEUE, PACER, SETTINGS

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.post("/dingtalk/callback")
async def callback(request: web.Request) -> web.Response:
    try:
        verify_sign(request.app[SETTINGS].dingtalk.app_secret, request.headers.get("timestamp"),
                    request.headers.get("sign"), int(time.time() * 1000))
        payload = parse_body(await request.read())
    except CallbackRejected as err:
        log.warning("dingtalk callback refused (%s) from %s: %s", err.status, request.remote, err.reason)
        return web.json_response({"error": err.reason}, status=err.status)
    async with request.app[PACER].acknowledging():  # verified: from here on it counts as in flight
        await accept_payload(request.app[INBOUND_QUEUE], payload)
    return web.json_response({})


async def accept_payload(inbound_queue: InboundQueue, payload: dict[str, Any]) -> None:
    """A verified robot payload (HTTP callback or stream) into the inbox; what the bot ignores is dropped."""
    message = to_inbound(payload)
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
        await accept_payload(inbound_queue, payload)

    client = stream_client(settings.app_key, settings.app_secret, on_message)
    task = asyncio.create_task(client.start())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
