"""In-process fake of the Douyin shop open API gateway, and signed pushes as Douyin sends them.

Routes (the SDK's URL form, POST /{method with "/"}?app_key&method&timestamp&v=2&sign&sign_method[&access_token],
body = param_json): token/create, order/orderDetail, order/searchList, order/batchDecrypt,
order/BatchSearchIndex. Every call is checked like the gateway does (app key, hmac-sha256 sign, access token)
and answered {"code": 10000, "msg": "success", "data": …} or an error code. Failures can be queued per path
(`fail_next` with a code or an HTTP status) or stalls (`stall_next`, for time-outs); `go_down` fails everything.

Buyer fields are "encrypted" the platform's way: a phone as "$index$cipher$1$" (the index is what
BatchSearchIndex gives for the plain number), a name or address detail as "#cipher#"; batchDecrypt undoes it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from integrations.channels.douyin.signature import api_sign, param_json, push_sign
from integrations.fakes.server import ErrorOrStatus, FakeServer

DETAIL_PATH = "/order/orderDetail"
SEARCH_PATH = "/order/searchList"
TOKEN_PATH = "/token/create"
DECRYPT_PATH = "/order/batchDecrypt"
INDEX_PATH = "/order/BatchSearchIndex"
SHIP_PATH = "/order/logisticsAdd"
TOKEN_TTL_S = 7 * 86400
_MSG = {20000: "服务不可用", 30001: "access_token不存在", 30002: "access_token已过期", 40003: "签名错误",
        40004: "参数错误", 50002: "业务处理失败", 90000: "调用频率超限"}


def _error(code: int, sub_msg: str = "", sub_code: str = "") -> web.Response:
    return web.json_response({"code": code, "msg": _MSG.get(code, "error"), "sub_code": sub_code or f"isv.{code}",
                              "sub_msg": sub_msg, "log_id": secrets.token_hex(8)})


def _ok(data: dict[str, Any]) -> web.Response:
    return web.json_response({"code": 10000, "msg": "success", "sub_code": "", "sub_msg": "", "data": data,
                              "log_id": secrets.token_hex(8)})


def search_index(phone: str) -> str:
    return hashlib.sha256(phone.encode()).hexdigest()[:24]


def encrypt_phone(phone: str) -> str:
    return f"${search_index(phone)}${base64.b64encode(phone.encode()).decode()}$1$"


def encrypt_text(text: str) -> str:
    return f"#{base64.b64encode(text.encode()).decode()}#"


def decrypt(cipher: str) -> str:
    body = cipher.split("$")[2] if cipher.startswith("$") else cipher.strip("#")
    return base64.b64decode(body).decode()


class FakeDouyin(FakeServer):
    def __init__(self, app_key: str = "7012345678901234567", app_secret: str = "fake-douyin-secret",
                 shop_id: str = "4463798", clock: Callable[[], float] | None = None) -> None:
        import time

        self.app_key, self.app_secret, self.shop_id = app_key, app_secret, shop_id
        self.clock = clock or time.time
        self.orders: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []  # method of every call that passed the checks
        self.refused: list[tuple[str, int]] = []  # (method, code) of calls refused by the checks
        self.shipments: list[dict[str, Any]] = []  # params of every order.logisticsAdd that shipped an order
        self.tokens_issued = 0
        self._tokens: set[str] = set()
        self._down = False
        self._path_failures: dict[str, deque[ErrorOrStatus]] = {}
        self._path_stalls: dict[str, deque[float]] = {}
        self.app = web.Application(middlewares=[self._outage, self.injected_trouble])
        for path in (DETAIL_PATH, SEARCH_PATH, TOKEN_PATH, DECRYPT_PATH, INDEX_PATH, SHIP_PATH):
            self.app.router.add_post(path, self._gateway)

    # ---- what tests tell it

    def fail_next(self, *, code: int | None = None, status: int | None = None, times: int = 1,
                  path: str = DETAIL_PATH) -> None:
        failure = ErrorOrStatus(code, status, _error, "fake douyin gateway failure")
        self._path_failures.setdefault(path, deque()).extend(failure for _ in range(times))

    def stall_next(self, seconds: float, times: int = 1, path: str = DETAIL_PATH) -> None:
        self._queue_stall(seconds, times, path)

    def go_down(self, down: bool = True) -> None:
        self._down = down

    def expire_tokens(self) -> None:
        self._tokens.clear()

    def add_order(self, order_id: str, *, status: int = 105, sku: str = "BP-001", qty: int = 2,
                  price_fen: int = 19_900, phone: str = "13800000000", name: str = "张三",
                  detail: str = "张杨路500号", created: int | None = None, updated: int | None = None,
                  buyer: str = "", **fields: Any) -> dict[str, Any]:
        """An order as order.orderDetail shows it, with the buyer's fields encrypted as the platform does."""
        now = int(self.clock())
        order = {
            "shop_id": int(self.shop_id), "order_id": order_id, "order_level": 2, "order_status": status,
            "order_status_desc": {1: "待支付", 105: "已支付", 2: "备货中", 4: "已取消"}.get(status, ""),
            "main_status": status, "create_time": created or now, "update_time": updated or created or now,
            "pay_time": (created or now) if status not in (1,) else 0,
            "order_amount": qty * price_fen, "pay_amount": qty * price_fen, "post_amount": 0,
            "encrypt_post_tel": encrypt_phone(phone), "post_tel": "", "mask_post_tel": phone[:3] + "****" + phone[-4:],
            "encrypt_post_receiver": encrypt_text(name), "post_receiver": "", "mask_post_receiver": name[:1] + "**",
            "post_addr": {"province": {"name": "上海市", "id": "31"}, "city": {"name": "上海市", "id": "3101"},
                          "town": {"name": "浦东新区", "id": "310115"}, "street": {"name": "", "id": ""},
                          "detail": "", "encrypt_detail": encrypt_text(detail)},
            "mask_post_addr": {"detail": detail[:2] + "***"},
            "doudian_open_id": buyer or f"1@#{hashlib.md5(phone.encode()).hexdigest()}",
            "sku_order_list": [{
                "order_id": order_id, "parent_order_id": order_id, "product_name": "刹车片", "code": sku,
                "out_sku_id": "", "sku_id": 1000001, "item_num": qty, "origin_amount": price_fen,
                "sum_amount": qty * price_fen, "pay_amount": qty * price_fen, "order_status": status,
            }],
        }
        order.update(fields)
        self.orders[order_id] = order
        return order

    def update(self, order_id: str, **fields: Any) -> None:
        order = self.orders[order_id]
        order.update(fields)
        order["update_time"] = max(int(self.clock()), order["update_time"] + 1)

    def change_address(self, order_id: str, detail: str) -> None:
        self.update(order_id, post_addr={**self.orders[order_id]["post_addr"], "encrypt_detail": encrypt_text(detail)})

    def count(self, method: str) -> int:
        return sum(1 for m in self.calls if m == method)

    # ---- the gateway

    @web.middleware
    async def _outage(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self._down:
            return web.Response(status=503, text="fake douyin gateway down")
        return await handler(request)

    async def _gateway(self, request: web.Request) -> web.Response:
        q = request.query
        method = q.get("method", "")
        body = await request.text()
        if q.get("app_key") != self.app_key:
            return self._refuse(method, 40004, "app_key 不存在")
        if method.replace(".", "/") != request.path.lstrip("/") or q.get("v") != "2" \
                or q.get("sign_method") != "hmac-sha256":
            return self._refuse(method, 40004, "method/v/sign_method 不对")
        if q.get("sign") != api_sign(self.app_key, self.app_secret, method, body, q.get("timestamp", "")):
            return self._refuse(method, 40003, "sign 校验失败")
        try:
            params = json.loads(body or "{}")
        except ValueError:
            return self._refuse(method, 40004, "param_json 不是 JSON")
        if body and param_json(params) != body:
            return self._refuse(method, 40003, "param_json 未按键排序或含空格")
        if method == "token.create":
            return self._token(params)
        if q.get("access_token") not in self._tokens:
            return self._refuse(method, 30001, "access_token 无效")
        self.calls.append(method)
        if method == "order.orderDetail":
            order = self.orders.get(str(params.get("shop_order_id")))
            if order is None:
                return _error(50002, "订单不存在")
            return _ok({"shop_order_detail": order})
        if method == "order.searchList":
            return self._search(params)
        if method == "order.logisticsAdd":
            return self._ship(params)
        if method == "order.batchDecrypt":
            infos = [{"auth_id": c["auth_id"], "cipher_text": c["cipher_text"], "decrypt_text": decrypt(c["cipher_text"]),
                      "err_no": 0, "err_msg": "", "is_virtual_tel": False} for c in params.get("cipher_infos", [])]
            return _ok({"decrypt_infos": infos, "custom_err": {"err_code": 0, "err_msg": ""}})
        found = [{"plain": p["plain_text"], "search_index": search_index(p["plain_text"])}
                 for p in params.get("plain_text_list", [])]
        return _ok({"plain_to_encrypt_index_list": found})

    def _refuse(self, method: str, code: int, why: str) -> web.Response:
        self.refused.append((method, code))
        return _error(code, why)

    def _token(self, params: dict[str, Any]) -> web.Response:
        if params.get("grant_type") != "authorization_self" or str(params.get("shop_id")) != self.shop_id:
            return self._refuse("token.create", 40004, "grant_type/shop_id 不对")
        token = secrets.token_hex(16)
        self._tokens.add(token)
        self.tokens_issued += 1
        self.calls.append("token.create")
        return _ok({"access_token": token, "expires_in": TOKEN_TTL_S, "refresh_token": secrets.token_hex(16),
                    "shop_id": self.shop_id, "shop_name": "汽配旗舰店", "scope": ""})

    def _ship(self, p: dict[str, Any]) -> web.Response:
        """order.logisticsAdd: whole-order shipment, as the platform answers it (codes from the SDK's return list)."""
        if not p.get("company_code"):
            return _error(40002, "物流公司编码不允许为空。", "isv.missing-parameter:60011")
        if not p.get("logistics_code"):
            return _error(40002, "发货信息为空。", "isv.missing-parameter:60036")
        order = self.orders.get(str(p.get("order_id")))
        if order is None:
            return _error(50002, "订单不存在，请仔细检查后重试。", "isv.business-failed:60033")
        if order["order_status"] == 4:
            return _error(50002, "订单已取消，禁止发货。", "isv.business-failed:60021")
        if order["order_status"] == 3:
            return _error(50002, "订单已发货，不允许再次执行发货。", "isv.business-failed:60110")
        self.shipments.append(dict(p))
        self.update(order["order_id"], order_status=3, order_status_desc="已发货")
        return _ok({})

    def _search(self, p: dict[str, Any]) -> web.Response:
        size, page = int(p.get("size", 10)), int(p.get("page", 0))
        if not 1 <= size <= 100:
            return self._refuse("order.searchList", 40004, "size 须在 1 到 100 之间")
        key = "update_time" if "update_time_start" in p else "create_time"
        low, high = p.get(f"{key}_start", 0), p.get(f"{key}_end", 2**62)
        hits = [o for o in self.orders.values() if low <= o[key] <= high]
        hits.sort(key=lambda o: (o[p.get("order_by", "create_time")], o["order_id"]),
                  reverse=not p.get("order_asc", False))
        return _ok({"page": page, "size": size, "total": len(hits), "shop_order_list": hits[page * size:(page + 1) * size]})


def push_element(tag: str, msg_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"tag": tag, "msg_id": msg_id, "data": json.dumps(data, ensure_ascii=False, separators=(",", ":"))}


def trade_data(tag: str, order_id: str, shop_id: str = "4463798", **extra: Any) -> dict[str, Any]:
    """A push's data as the platform sends it (tags 100, 101, 105, 106; 200 with aftersale fields)."""
    base: dict[str, Any] = {"p_id": int(order_id), "s_ids": [int(order_id)], "shop_id": int(shop_id),
                            "order_status": {"100": 1, "101": 105, "106": 4}.get(tag, 2), "order_type": 0, "biz": 2}
    if tag == "200":
        base = {"aftersale_id": 7000000000000000001, "aftersale_status": 6, "aftersale_type": 2,
                "apply_time": 1_760_000_000, "p_id": int(order_id), "s_id": int(order_id), "shop_id": int(shop_id),
                "reason_code": 1, "refund_amount": 19_900, "refund_post_amount": 0, "refund_voucher_num": 0}
    base.update(extra)
    return base


def signed_push(app_key: str, app_secret: str, elements: Iterable[dict[str, Any]]) -> tuple[dict[str, str], bytes]:
    """Headers and body of one push batch, as Douyin POSTs it."""
    body = json.dumps(list(elements), ensure_ascii=False, separators=(",", ":")).encode()
    return {"app-id": app_key, "event-sign": push_sign(app_key, body, app_secret),
            "Content-Type": "application/json"}, body
