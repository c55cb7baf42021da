"""Async client for the Douyin shop open API (抖店开放平台): signed calls, the shop's access token, orders.

Wire form, as the official SDK sends it (doudian sdk_golang core/doudian_op_api_client.go + core/http):
POST {api_base}/{method with "." → "/"}?app_key=&method=&timestamp=&sign=&v=2&sign_method=hmac-sha256
[&access_token=], body = param_json (see signature.py). Answer: {"code": 10000, "msg", "sub_code", "sub_msg",
"data", "log_id"}; 10000 is success.

The access token is the shop's own (自用型应用): token.create with grant_type=authorization_self and shop_id,
kept by a TokenKeeper in the shared token store like WeCom's, and fetched again when refused.

Assumptions (no platform access to confirm): codes 30001/30002 mean the access token is invalid/expired (the
call is repeated once with a new token); 20000 (service unavailable) and 90000 (rate limited) are worth
retrying, as are HTTP 5xx and time-outs; every other code refuses the call for good.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import httpx

from integrations.channels.douyin.signature import API_VERSION, SIGN_METHOD, api_sign, param_json
from integrations.tokens import TokenCache, TokenKeeper

SUCCESS = 10000
_TOKEN_CODES = frozenset({30001, 30002})
_RETRYABLE_CODES = frozenset({20000, 90000})
SEARCH_PAGE_SIZE = 100  # the platform's maximum
JsonObject = dict[str, Any]


class DouyinError(Exception):
    """`code` is the platform's code, or None when no answer was read (network, HTTP status)."""

    def __init__(self, code: int | None, message: str, sub_code: str = "") -> None:
        super().__init__(f"douyin code {code}: {message}")
        self.code = code
        self.message = message
        self.sub_code = sub_code  # e.g. "isv.business-failed:60110"


class DouyinRetryable(DouyinError):
    """The call may work later: the platform was busy, throttled, unreachable or failed inside."""


class DouyinRejected(DouyinError):
    """The platform refused the call for good: repeating it will not help."""


class _TokenRefused(DouyinError):
    pass


class DouyinOrders(Protocol):
    """What the order use cases read from the platform (the real client, or a stand-in in unit tests)."""

    async def order_detail(self, shop_order_id: str) -> JsonObject: ...

    async def search_orders(self, *, update_start: int, update_end: int, page: int,
                            size: int = SEARCH_PAGE_SIZE) -> tuple[list[JsonObject], int]: ...


class BuyerData(Protocol):
    """The buyer's encrypted fields, used only where the customer must be texted or matched: decrypt for a
    text message (order.batchDecrypt), search index to match a known phone against Douyin orders
    (order.BatchSearchIndex). Nothing decrypted is stored."""

    async def decrypt(self, ciphers: list[tuple[str, str]]) -> dict[str, str]: ...

    async def search_index(self, plain: str, kind: int = 3) -> str: ...


class DouyinClient:
    system = "douyin"  # integrations.channels.OrderCounter

    def __init__(self, http: httpx.AsyncClient, *, api_base: str, app_key: str, app_secret: str, shop_id: str,
                 token_cache: TokenCache, clock: Callable[[], float] = time.time) -> None:
        self._http = http
        self._api_base = api_base.rstrip("/")
        self._app_key = app_key
        self._app_secret = app_secret
        self._shop_id = shop_id
        self._clock = clock
        self._tokens = TokenKeeper(token_cache, f"douyin:{app_key}:{shop_id}", self._fetch_token,
                                   refused=_TokenRefused, clock=clock)

    # ---- orders

    async def order_detail(self, shop_order_id: str) -> JsonObject:
        data = await self.call("order.orderDetail", {"shop_order_id": shop_order_id})
        detail = data.get("shop_order_detail")
        if not isinstance(detail, dict):
            raise DouyinRetryable(None, "order.orderDetail answer has no shop_order_detail")
        return detail

    async def search_orders(self, *, update_start: int, update_end: int, page: int,
                            size: int = SEARCH_PAGE_SIZE) -> tuple[list[JsonObject], int]:
        """One page (from 0) of the orders updated in [start, end], oldest update first; and the total."""
        data = await self.call("order.searchList", {
            "update_time_start": update_start, "update_time_end": update_end, "order_by": "update_time",
            "order_asc": True, "page": page, "size": size,
        })
        orders = data.get("shop_order_list") or []
        return [o for o in orders if isinstance(o, dict)], int(data.get("total") or 0)

    async def count_orders(self, start: datetime, end: datetime) -> int:
        """Orders created in [start, end) as Douyin counts them (searchList's total; its end is inclusive)."""
        data = await self.call("order.searchList", {
            "create_time_start": int(start.timestamp()), "create_time_end": int(end.timestamp()) - 1,
            "page": 0, "size": 1,
        })
        return int(data.get("total") or 0)

    # ---- buyer data (BuyerData)

    async def decrypt(self, ciphers: list[tuple[str, str]]) -> dict[str, str]:
        """(order id, ciphertext) pairs → ciphertext: plain text, 50 per call as the platform allows."""
        plain: dict[str, str] = {}
        for i in range(0, len(ciphers), 50):
            chunk = [{"auth_id": auth, "cipher_text": cipher} for auth, cipher in ciphers[i:i + 50]]
            data = await self.call("order.batchDecrypt", {"cipher_infos": chunk})
            for item in data.get("decrypt_infos") or []:
                if isinstance(item, dict) and not item.get("err_no"):
                    plain[str(item.get("cipher_text"))] = str(item.get("decrypt_text") or "")
        return plain

    async def search_index(self, plain: str, kind: int = 3) -> str:
        """The platform's search index of a plain value (kind 1 address, 2 name, 3 phone)."""
        data = await self.call("order.BatchSearchIndex",
                               {"plain_text_list": [{"plain_text": plain, "encrypt_type": kind}]})
        found = data.get("plain_to_encrypt_index_list") or []
        return str(found[0].get("search_index") or "") if found and isinstance(found[0], dict) else ""

    # ---- the signed call

    async def call(self, method: str, params: JsonObject) -> JsonObject:
        """`data` of a successful answer."""
        try:
            return await self._tokens.call(lambda token: self._signed(method, params, token))
        except _TokenRefused as refused:
            raise DouyinRetryable(refused.code, "fresh access token refused: " + refused.message) from refused

    async def _signed(self, method: str, params: JsonObject, token: str | None) -> JsonObject:
        body = param_json(params)
        timestamp = int(self._clock())
        query = {
            "app_key": self._app_key, "method": method, "timestamp": str(timestamp), "v": API_VERSION,
            "sign": api_sign(self._app_key, self._app_secret, method, body, timestamp), "sign_method": SIGN_METHOD,
        }
        if token is not None:
            query["access_token"] = token
        path = "/" + method.replace(".", "/")
        try:
            response = await self._http.post(self._api_base + path, params=query, content=body.encode(),
                                             headers={"Content-Type": "application/json"})
        except httpx.TransportError as err:
            raise DouyinRetryable(None, f"{method}: {type(err).__name__}") from err
        if response.status_code >= 500 or response.status_code == 429:
            raise DouyinRetryable(None, f"{method}: HTTP {response.status_code}")
        if response.status_code != 200:
            raise DouyinRejected(None, f"{method}: HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError as err:
            raise DouyinRetryable(None, f"{method}: answer is not JSON") from err
        if not isinstance(answer, dict):
            raise DouyinRetryable(None, f"{method}: answer is not a JSON object")
        code = _code(answer)
        if code == SUCCESS:
            data = answer.get("data")
            return data if isinstance(data, dict) else {}
        message = f"{method}: {answer.get('msg', '')} {answer.get('sub_code', '')} {answer.get('sub_msg', '')}".strip()
        if code in _TOKEN_CODES and token is not None:
            raise _TokenRefused(code, message)
        sub_code = str(answer.get("sub_code") or "")
        if code in _RETRYABLE_CODES:
            raise DouyinRetryable(code, message, sub_code)
        raise DouyinRejected(code, message, sub_code)

    async def _fetch_token(self) -> tuple[str, float]:
        data = await self._signed("token.create", {"code": "", "grant_type": "authorization_self",
                                                   "shop_id": self._shop_id}, None)
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise DouyinRetryable(None, "token.create answer has no access_token")
        return token, float(data.get("expires_in") or 7 * 86400)


def _code(answer: JsonObject) -> int:
    try:
        return int(answer.get("code", -1))
    except (TypeError, ValueError):
        return -1
