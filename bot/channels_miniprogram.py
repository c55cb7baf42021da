"""The chain's own WeChat mini-program: login with `wx.login`'s code, then the customer's own orders.

`POST /channels/miniprogram/login` {js_code} → jscode2session → our signed, expiring session token (never WeChat's
session_key, which is not stored: see integrations/channels/miniprogram). The customer is found or created from the
OpenID (and UnionID) by the same rules as an order's buyer. With `Authorization: Bearer <token>`:
`GET …/orders` (every channel's orders of this customer, a page at a time), `POST …/orders` (an order from the app,
idempotent on its external id), `POST …/orders/{order_no}/address` (the same path as the chat command 改地址),
`POST …/orders/{order_no}/aftersale` (a return or refund request with a reason and photo links). A customer reaches
only their own orders (another's answers 404, as one that does not exist). Every change is audited with
via "miniprogram" and the customer's number as the actor.

Logins are limited per client IP in this process (MINIPROGRAM__LOGINS_PER_MINUTE): each costs a call to WeChat,
which allows 100 a minute per user. Behind a proxy the IP is the proxy's unless aiohttp is told the forwarded one.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn

import httpx
from aiohttp import web

from bot.api_bodies import fen
from bot.jsonio import dumps, error, ok, parse_body, path_value
from bot.keys import BUS, DB, DISPATCHER, SETTINGS
from bot.miniprogram_wire import (
    LoginIn,
    MiniAddressIn,
    MiniAfterSaleIn,
    MiniOrderIn,
    aftersale_view,
    listed,
    order_view,
)
from domain import commands as c
from domain import limits as lim
from domain.customers import CustomerKeys
from domain.errors import NotFound
from domain.order import Order
from handlers.address_check import AddressChangeOutcome, RequestAddressChange
from handlers.customer_login import IdentifyCustomer, customer_named_by
from integrations.channels.miniprogram import (
    BadToken,
    LoginRefused,
    LoginUnavailable,
    MiniprogramClient,
    SessionSigner,
)
from integrations.db.customer_orders import customer_orders
from integrations.db.uow import UnitOfWork

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
CHANNEL = VIA = "miniprogram"
PREFIX = "/channels/miniprogram"


# ---- wiring

@dataclass
class Miniprogram:
    client: MiniprogramClient
    signer: SessionSigner
    logins: LoginLimiter


class LoginLimiter:
    """At most `per_minute` logins per client IP in any 60 s (this process's count; 0 = no limit)."""

    def __init__(self, per_minute: int, max_clients: int = 10_000) -> None:
        self.per_minute, self.max_clients = per_minute, max_clients
        self._seen: dict[str, deque[float]] = {}

    def allow(self, client: str, now: float) -> bool:
        if self.per_minute <= 0:
            return True
        times = self._seen.pop(client, None) or deque()
        while times and times[0] <= now - 60:
            times.popleft()
        allowed = len(times) < self.per_minute
        if allowed:
            times.append(now)
        if len(self._seen) >= self.max_clients:  # forget the longest-quiet client (dicts keep insertion order)
            self._seen.pop(next(iter(self._seen)))
        self._seen[client] = times
        return allowed


MINIPROGRAM = web.AppKey("miniprogram", Miniprogram)


async def miniprogram_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[SETTINGS].miniprogram
    if not cfg.enabled:
        yield
        return
    async with httpx.AsyncClient(timeout=httpx.Timeout(cfg.timeout_s)) as http:
        client = MiniprogramClient(http, api_base=cfg.api_base, app_id=cfg.app_id, secret=cfg.secret.get_secret_value())
        app[MINIPROGRAM] = Miniprogram(client, SessionSigner(cfg.session_secret.get_secret_value(), cfg.session_ttl),
                                       LoginLimiter(cfg.logins_per_minute))
        yield


_STATUS: dict[int, type[web.HTTPError]] = {
    400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 404: web.HTTPNotFound, 409: web.HTTPConflict,
    429: web.HTTPTooManyRequests, 503: web.HTTPServiceUnavailable,
}


def _stop(status: int, code: str, message: str, **headers: str) -> NoReturn:
    """Refuse with {"error": code, "message": a Chinese sentence}."""
    raise _STATUS[status](text=dumps({"error": code, "message": message}), content_type="application/json",
                          headers=headers or None)


def _channel(request: web.Request) -> Miniprogram:
    mini = request.app.get(MINIPROGRAM)
    if mini is None:
        _stop(404, "not_configured", "小程序渠道未配置。")
    return mini


def _now(request: web.Request) -> datetime:
    return request.app[BUS].deps.now


# ---- login

@routes.post(f"{PREFIX}/login")
async def login(request: web.Request) -> web.Response:
    mini = _channel(request)
    now = _now(request)
    if not mini.logins.allow(request.remote or "", now.timestamp()):
        log.info("miniprogram: login rate limit reached for %s", request.remote)
        _stop(429, "too_many_logins", "登录太频繁，请稍后再试。", **{"Retry-After": "60"})
    body = await parse_body(request, LoginIn)
    try:
        session = await mini.client.code2session(body.js_code)
    except LoginRefused as err:
        log.info("miniprogram: login code refused by WeChat (errcode %d) from %s", err.errcode, request.remote)
        _stop(401, "invalid_code", "登录凭证无效或已使用，请重新登录。")
    except LoginUnavailable as err:
        if err.rate_limited:
            log.warning("miniprogram: WeChat rate limit (45011)")
            _stop(429, "wechat_rate_limited", "微信登录太频繁，请一分钟后再试。", **{"Retry-After": "60"})
        log.warning("miniprogram: login failed: %s", err)
        _stop(503, "wechat_unavailable", "微信登录暂时不可用，请稍后再试。", **{"Retry-After": "5"})
    keys = CustomerKeys(openid=session.openid, unionid=session.unionid)
    customer_id = await request.app[BUS].handle(IdentifyCustomer(keys, by=CHANNEL, via=VIA))
    token, expires = mini.signer.issue(session.openid, session.unionid, int(now.timestamp()))
    return ok({"token": token, "token_type": "Bearer", "expires_in": mini.signer.ttl_s,
               "expires_at": datetime.fromtimestamp(expires, UTC), "customer_id": customer_id})


# ---- the signed-in customer

@dataclass(frozen=True)
class SignedIn:
    openid: str
    unionid: str
    customer_id: str


async def _signed_in(request: web.Request) -> SignedIn:
    mini = _channel(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer" or not token.strip():
        _stop(401, "unauthorized", "请先登录（Authorization: Bearer <令牌>）。")
    try:
        claims = mini.signer.verify(token.strip(), int(_now(request).timestamp()))
    except BadToken as err:
        log.info("miniprogram: session token refused (%s) from %s", err, request.remote)
        if str(err) == "expired":
            _stop(401, "session_expired", "登录已过期，请重新登录。")
        _stop(401, "invalid_token", "登录凭证无效，请重新登录。")
    async with UnitOfWork(request.app[DB]) as uow:
        customer_id = await customer_named_by(uow, ("openid", claims.openid))
    if customer_id is None:
        _stop(401, "invalid_token", "登录凭证无效，请重新登录。")
    return SignedIn(claims.openid, claims.unionid, customer_id)


async def _own_order(request: web.Request, who: SignedIn) -> Order:
    """The customer's order named in the path; another's is "not found", exactly as a missing one."""
    order_no = path_value(request, "order_no", lim.ORDER_NO)
    async with UnitOfWork(request.app[DB]) as uow:
        order = await uow.orders.get(order_no)
    if order is None or order.customer_id != who.customer_id:
        raise NotFound(f"找不到订单 {order_no}。")
    return order


def _page(request: web.Request, name: str, default: int, high: int) -> int:
    text = request.query.get(name, "")
    if not text:
        return default
    if not text.isdigit() or not 1 <= int(text) <= high:
        _stop(400, "invalid_query", f"参数 {name} 须为 1 到 {high} 之间的整数。")
    return int(text)


@routes.get(f"{PREFIX}/orders")
async def list_orders(request: web.Request) -> web.Response:
    who = await _signed_in(request)
    most = request.app[SETTINGS].miniprogram.orders_page_size
    size = _page(request, "size", most, most)
    page = _page(request, "page", 1, 10_000)
    async with UnitOfWork(request.app[DB]) as uow:
        total, orders = await customer_orders(uow.conn, who.customer_id, (page - 1) * size, size)
    return ok({"total": total, "page": page, "size": size, "orders": [listed(o) for o in orders]})


@routes.post(f"{PREFIX}/orders")
async def place_order(request: web.Request) -> web.Response:
    who = await _signed_in(request)
    body = await parse_body(request, MiniOrderIn)
    store = body.store or request.app[SETTINGS].miniprogram.store or None
    cmd = c.CreateOrder(
        channel=CHANNEL, external_id=body.external_id, customer_id="", customer_name=body.name,
        customer_phone=body.phone, address=body.address,
        customer=CustomerKeys(openid=who.openid, unionid=who.unionid, phone=body.phone, name=body.name),
        lines=tuple(c.LineInput(x.sku, x.qty, fen(x.unit_price), x.name) for x in body.lines),
        paid=body.paid, store=store, by=who.customer_id, via=VIA,
    )
    order, created = await request.app[BUS].handle(cmd)
    if not created:  # the app sent this order before: the same answer, unless the id is another customer's order
        async with UnitOfWork(request.app[DB]) as uow:
            now_customer = await customer_named_by(uow, ("openid", who.openid))
        if order.customer_id != now_customer:
            log.info("miniprogram: external id %r of another customer's order", body.external_id)
            _stop(409, "external_id_taken", f"订单号 {body.external_id} 已被使用。")
    return ok(order_view(order), 201 if created else 200)


@routes.post(f"{PREFIX}/orders/{{order_no}}/address")
async def change_address(request: web.Request) -> web.Response:
    """The chat command 改地址's path (handlers/address_check.py): checked on the map, refused after shipping."""
    who = await _signed_in(request)
    order = await _own_order(request, who)
    body = await parse_body(request, MiniAddressIn)
    cmd = RequestAddressChange(order.order_no, body.address, by=who.customer_id, via=VIA)
    outcome: AddressChangeOutcome = await request.app[BUS].handle(cmd)
    request.app[DISPATCHER].notify()  # the relabel card (or the service card) leaves now
    check = outcome.check
    if not outcome.applied and check is not None:
        return error(422, "address_unresolved", check.reason, order_no=outcome.order.order_no)
    return ok(order_view(outcome.order))


@routes.post(f"{PREFIX}/orders/{{order_no}}/aftersale")
async def request_aftersale(request: web.Request) -> web.Response:
    """A return or refund request through the after-sale path (handlers/aftersales.py): approvals as for any."""
    who = await _signed_in(request)
    order = await _own_order(request, who)
    body = await parse_body(request, MiniAfterSaleIn)
    amount = fen(body.amount) if body.amount is not None else order.amount_fen
    cmd = c.OpenAfterSale(order.order_no, body.kind, body.reason, amount, by=who.customer_id, via=VIA,
                          photos=tuple(body.photos))
    aftersale = await request.app[BUS].handle(cmd)
    request.app[DISPATCHER].notify()  # the approval card leaves now
    return ok(aftersale_view(aftersale, body.photos), 201)
