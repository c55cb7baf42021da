"""Kuaidi100 push callback: verify the sign, store the waybill's latest report, answer success at once.

Also the outbound half of the subscription: the HTTP client and the outbox sender for channel "courier",
present only when LOGISTICS__KEY, LOGISTICS__CALLBACK_URL and LOGISTICS__SALT are all set.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

import httpx
from aiohttp import web

from bot.jsonio import dumps
from bot.keys import BUS, DB, DISPATCHER, SETTINGS
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


FORM = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 8  # Kuaidi100 sends param and sign


class BadForm(ValueError):
    """A body that is not the urlencoded UTF-8 form Kuaidi100 sends; `status` is the answer's."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def read_form(body: bytes, content_type: str, charset: str | None) -> dict[str, str]:
    """The form's fields, read by us and strictly: aiohttp's own form reader lets invalid UTF-8, an unknown
    charset or a broken multipart body escape as a 500, and it would run before the signature check."""
    if content_type != FORM:
        raise BadForm(f"只接受 {FORM} 表单", status=415)
    if charset is not None and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise BadForm("表单只接受 UTF-8 编码", status=415)
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          encoding="utf-8", errors="strict", max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError) as err:
        raise BadForm("表单不是有效的 UTF-8 URL 编码") from err
    if any(len(values) != 1 for values in fields.values()):
        raise BadForm("表单字段重复")
    return {name: values[0] for name, values in fields.items()}


@routes.post("/channels/kuaidi100/callback")
async def callback(request: web.Request) -> web.Response:
    try:
        form = read_form(await request.read(), request.content_type, request.charset)
    except BadForm as err:
        log.warning("kuaidi100 callback refused (%s) from %s: %s", err.status, request.remote, err.message)
        return _refuse(err.status, err.message)
    param, sign = form.get("param"), form.get("sign")
    if param is None or sign is None:
        return _refuse(400, "缺少 param 或 sign")
    if not sign_ok(param, sign, request.app[SETTINGS].logistics.salt.get_secret_value()):
        log.warning("kuaidi100 callback with a bad sign from %s", request.remote)
        return _refuse(403, "签名错误")
    try:
        push = parse_push(param)
    except BadPush as err:
        log.warning("kuaidi100 callback refused: %s", err)
        return _refuse(400, "无法解析推送内容")
    if await record_push(request.app[DB], push, request.app[BUS].deps):
        request.app[DISPATCHER].notify()  # the supervisors' conflict card leaves now, not at the next poll
    return web.json_response(CALLBACK_OK, dumps=dumps)


async def courier_ctx(app: web.Application) -> AsyncIterator[None]:
    """The subscription client's connection pool, when push tracking is configured."""
    cfg = app[SETTINGS].logistics
    if not (cfg.key and cfg.callback_url and cfg.salt):
        yield
        return
    async with httpx.AsyncClient(timeout=httpx.Timeout(cfg.timeout_s)) as http:
        app[SUBSCRIBER] = Kuaidi100Subscriber(
            http, api_base=cfg.api_base, key=cfg.key.get_secret_value(), callback_url=cfg.callback_url, salt=cfg.salt.get_secret_value(),
            default_carrier=cfg.default_carrier,
        )
        yield


def courier_senders(app: web.Application) -> dict[str, Sender]:
    """Channel "courier" when configured; otherwise its rows wait in the outbox (see /metrics)."""
    subscriber = app.get(SUBSCRIBER)
    return {CHANNEL: CourierSubscribeSender(subscriber)} if subscriber is not None else {}
