"""In-process fake of WeChat's mini-program server APIs in WeChat's wire format: the login check GET
/sns/jscode2session; the access token (GET /cgi-bin/token, POST /cgi-bin/stable_token); and 发货信息管理: POST
/wxa/sec/order/upload_shipping_info and /wxa/sec/order/get_order, which check the access token (40001) and the body
(47001), know the payments a test registers (`add_payment`; others 10060001), allow one 重新发货 and then answer
10060003, and refuse a refunded payment with 10060004. `uploads` records every accepted upload.

A test (or the demo) hands out codes as `wx.login` would: `fake.issue_code("o-openid", unionid=…)` returns a fresh
code; each code works once (a second use answers 40163, an unknown one 40029), as WeChat's do. Every call checks
appid, secret and grant_type (40013 / 40125 / 40002 otherwise). Failures are queued with `fail_next(errcode=…)`
(e.g. -1 busy, 45011 rate limit) or `fail_next(status=…)`; `stall_next` delays the answer (time-outs). Answers go
out as text/plain JSON, as WeChat's often do.
"""

from __future__ import annotations

import json
import secrets
from collections import deque
from datetime import datetime
from typing import Any

from aiohttp import web

from integrations.fakes.server import ErrorOrStatus, FakeServer

PATH = "/sns/jscode2session"
TOKEN_PATH, STABLE_TOKEN_PATH = "/cgi-bin/token", "/cgi-bin/stable_token"
UPLOAD_PATH, ORDER_PATH = "/wxa/sec/order/upload_shipping_info", "/wxa/sec/order/get_order"
_MSG = {-1: "system error", 40002: "invalid grant_type", 40013: "invalid appid", 40029: "invalid code",
        40125: "invalid appsecret", 40163: "code been used", 40226: "code blocked",
        45011: "api minute-quota reach limit  mustslower  retry next minute", 40001: "invalid credential",
        47001: "data format error", 10060001: "支付单不存在", 10060003: "支付单已使用重新发货机会",
        10060004: "支付单处于不可发货的状态"}


def _answer(data: dict[str, Any]) -> web.Response:
    return web.Response(text=json.dumps(data), content_type="text/plain")


def _error(errcode: int) -> web.Response:
    return _answer({"errcode": errcode, "errmsg": f"{_MSG.get(errcode, 'error')}, rid: {secrets.token_hex(4)}"})


class FakeWeChatMini(FakeServer):
    def __init__(self, app_id: str = "wx0123456789abcdef", secret: str = "fake-mini-secret") -> None:
        self.app_id, self.secret = app_id, secret
        self._codes: dict[str, tuple[str, str]] = {}  # code -> (openid, unionid), until used
        self._used: set[str] = set()
        self.calls: list[dict[str, str]] = []  # query of every call (secret included: tests check it was sent)
        self.sessions_issued = 0
        self._path_failures: dict[str, deque[ErrorOrStatus]] = {}
        self._path_stalls: dict[str, deque[float]] = {}
        self.payments: dict[tuple[str, str], dict[str, Any]] = {}  # (mchid, out_trade_no) → payment
        self.uploads: list[dict[str, Any]] = []  # body of every accepted upload_shipping_info
        self.tokens_issued = 0
        self._tokens: set[str] = set()
        self.app = web.Application(middlewares=[self.injected_trouble])
        self.app.router.add_get(PATH, self._jscode2session)
        self.app.router.add_get(TOKEN_PATH, self._token)
        self.app.router.add_post(STABLE_TOKEN_PATH, self._token)
        self.app.router.add_post(UPLOAD_PATH, self._upload)
        self.app.router.add_post(ORDER_PATH, self._get_order)

    # ---- what tests tell it

    def issue_code(self, openid: str, *, unionid: str = "") -> str:
        """A code as wx.login gives the app for the user `openid` (once usable)."""
        code = secrets.token_hex(16)
        self._codes[code] = (openid, unionid)
        return code

    def fail_next(self, *, errcode: int | None = None, status: int | None = None, times: int = 1,
                  path: str = PATH) -> None:
        failure = ErrorOrStatus(errcode, status, _error, "fake wechat failure")
        self._path_failures.setdefault(path, deque()).extend(failure for _ in range(times))

    def stall_next(self, seconds: float, times: int = 1, path: str = PATH) -> None:
        self._queue_stall(seconds, times, path)

    def add_payment(self, mchid: str, out_trade_no: str, openid: str) -> dict[str, Any]:
        """A paid order as WeChat Pay knows it: order_state 1 待发货 (2 已发货, 5 已退款)."""
        payment = {"merchant_id": mchid, "merchant_trade_no": out_trade_no, "openid": openid, "order_state": 1,
                   "transaction_id": "42000" + secrets.token_hex(8), "reshipped": False}
        self.payments[mchid, out_trade_no] = payment
        return payment

    def expire_tokens(self) -> None:
        self._tokens.clear()

    # ---- the API

    async def _jscode2session(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.calls.append(query)
        if query.get("appid") != self.app_id:
            return _error(40013)
        if query.get("secret") != self.secret:
            return _error(40125)
        if query.get("grant_type") != "authorization_code":
            return _error(40002)
        code = query.get("js_code", "")
        if code in self._used:
            return _error(40163)
        if code not in self._codes:
            return _error(40029)
        openid, unionid = self._codes.pop(code)
        self._used.add(code)
        self.sessions_issued += 1
        data = {"openid": openid, "session_key": secrets.token_urlsafe(16)}
        if unionid:
            data["unionid"] = unionid
        return _answer(data)

    # ---- access token and 发货信息管理

    async def _token(self, request: web.Request) -> web.Response:
        query = dict(request.query) if request.method == "GET" else await request.json()
        if query.get("grant_type") != "client_credential":
            return _error(40002)
        if query.get("appid") != self.app_id:
            return _error(40013)
        if query.get("secret") != self.secret:
            return _error(40125)
        token = secrets.token_urlsafe(24)
        self._tokens.add(token)
        self.tokens_issued += 1
        return _answer({"access_token": token, "expires_in": 7200})

    async def _body(self, request: web.Request) -> dict[str, Any] | web.Response:
        if request.query.get("access_token") not in self._tokens:
            return _error(40001)
        try:
            body = await request.json()
        except ValueError:
            return _error(47001)
        return body if isinstance(body, dict) else _error(47001)

    async def _upload(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        if not _well_formed(body):
            return _error(47001)
        key = body["order_key"]
        payment = self.payments.get((str(key.get("mchid")), str(key.get("out_trade_no"))))
        if payment is None or payment["openid"] != body["payer"]["openid"]:
            return _error(10060001)
        if payment["order_state"] == 5:
            return _error(10060004)
        if payment["order_state"] != 1:
            if payment["reshipped"]:
                return _error(10060003)
            payment["reshipped"] = True
        payment["order_state"] = 2
        self.uploads.append(body)
        return _answer({"errcode": 0, "errmsg": "ok"})

    async def _get_order(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        payment = self.payments.get((str(body.get("merchant_id")), str(body.get("merchant_trade_no"))))
        if payment is None:
            return _error(10060001)
        return _answer({"errcode": 0, "errmsg": "ok", "order": {k: v for k, v in payment.items() if k != "reshipped"}})


def _well_formed(body: dict[str, Any]) -> bool:
    """The checks WeChat answers 47001 for: the fields upload_shipping_info requires, for express (logistics_type 1)."""
    key, shipping, payer = body.get("order_key"), body.get("shipping_list"), body.get("payer")
    if not isinstance(key, dict) or key.get("order_number_type") not in (1, 2) or not isinstance(payer, dict):
        return False
    if key["order_number_type"] == 1 and not (key.get("mchid") and key.get("out_trade_no")):
        return False
    if key["order_number_type"] == 2 and not key.get("transaction_id"):
        return False
    if body.get("logistics_type") not in (1, 2, 3, 4) or body.get("delivery_mode") not in (1, 2):
        return False
    if not isinstance(shipping, list) or not 1 <= len(shipping) <= 15 or not payer.get("openid"):
        return False
    if body["delivery_mode"] == 1 and len(shipping) != 1:
        return False
    try:
        datetime.fromisoformat(str(body.get("upload_time")))
    except ValueError:
        return False
    return all(isinstance(s, dict) and s.get("item_desc") and (body["logistics_type"] != 1 or (
        s.get("tracking_no") and s.get("express_company"))) for s in shipping)
