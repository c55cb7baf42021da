"""What every request passes before its route: header bytes that decode, and platform callback bodies in time.

aiohttp decodes header bytes that are not UTF-8 into lone surrogates, which fail later wherever the value is
encoded (a signature compared as bytes, a token, a log line): such a request is refused here, once, for
every route. The platform callbacks (WeCom, DingTalk, courier pushes) are open to anyone and must be
answered within seconds, so their bodies are read here with a time limit: a sender that sends headers and
never finishes its body gets 408 instead of holding a worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from bot.jsonio import dumps

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CALLBACK_PATHS = ("/wecom/callback", "/dingtalk/callback", "/dingtalk/card/callback")
CALLBACK_PREFIXES = ("/channels/",)


def is_platform_callback(path: str) -> bool:
    return path in CALLBACK_PATHS or path.startswith(CALLBACK_PREFIXES)


def _undecodable(raw_headers: tuple[tuple[bytes, bytes], ...]) -> bool:
    """True when a header name or value is not UTF-8 (aiohttp would hand it on as lone surrogates, U+DC80..U+DCFF).
    All of them in one check: a newline between them, which no UTF-8 sequence can span."""
    joined = b"\n".join(map(b"\n".join, raw_headers))
    if joined.isascii():
        return False
    try:
        joined.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _refuse(status: int, code: str, message: str) -> web.Response:
    response = web.json_response({"error": code, "message": message}, status=status, dumps=dumps)
    response.force_close()  # the rest of the request (an unread body) is not worth the connection
    return response


def edge_guard(body_timeout_s: float) -> Middleware:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _undecodable(request.raw_headers):
            log.warning("refused a request with undecodable header bytes from %s", request.remote)
            return _refuse(400, "invalid_header", "请求头含有无法识别的字节。")
        if (request.method == "POST" and request.can_read_body and not request.content.is_eof()
                and is_platform_callback(request.path)):  # a body already in full needs no clock
            try:
                async with asyncio.timeout(body_timeout_s):
                    await request.read()  # kept by aiohttp for the route
            except TimeoutError:
                log.warning("callback body not received within %.1f s from %s", body_timeout_s, request.remote)
                return _refuse(408, "body_timeout", "请求体发送超时。")
        return await handler(request)

    return guard
