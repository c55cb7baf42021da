"""Async client for the WeCom server API: access-token lifecycle, errcode classification, sending."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

import httpx

TOKEN_REFRESH_MARGIN_S = 300.0
DEFAULT_TOKEN_TTL_S = 7200

# invalid credential / invalid access_token / access_token expired: fetch a new token and repeat once.
_TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
# system busy / API call frequency limit / API concurrency limit.
_RETRYABLE_ERRCODES = frozenset({-1, 45009, 45033})

JsonObject = dict[str, Any]


class TokenCache(Protocol):
    async def get(self, key: str) -> tuple[str, float] | None: ...

    async def put(self, key: str, token: str, expires_at: float) -> None: ...

    def forget(self, key: str, token: str) -> None:
        """`token` was refused: the next get must read the shared store, not a copy kept in memory."""


class MemoryTokenCache:
    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, float]] = {}

    async def get(self, key: str) -> tuple[str, float] | None:
        return self._tokens.get(key)

    async def put(self, key: str, token: str, expires_at: float) -> None:
        self._tokens[key] = (token, expires_at)

    def forget(self, key: str, token: str) -> None:
        """Nothing to do: this dictionary is the store itself."""


class WeComError(Exception):
    """`errcode` is WeCom's errcode, or None when no WeCom answer was read (network, HTTP status)."""

    def __init__(self, errcode: int | None, message: str) -> None:
        super().__init__(f"errcode {errcode}: {message}")
        self.errcode = errcode
        self.message = message


class WeComRetryable(WeComError):
    """The call may succeed later: WeCom was busy, throttled, unreachable or failed inside."""


class WeComRejected(WeComError):
    """WeCom refused the call for good: repeating the same payload will not help."""


class WeComClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_base: str,
        corp_id: str,
        secret: str,
        agent_id: int,
        token_cache: TokenCache,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._api_base = api_base.rstrip("/")
        self._corp_id = corp_id
        self._secret = secret
        self._cache = token_cache
        self._cache_key = f"{corp_id}:{agent_id}"
        self._clock = clock
        self._refresh_lock = asyncio.Lock()

    async def send(self, payload: JsonObject) -> JsonObject:
        """POST message/send; the answer carries msgid, and response_code for template cards."""
        return await self._call_with_token("/cgi-bin/message/send", payload)

    async def update_template_card(self, payload: JsonObject) -> JsonObject:
        return await self._call_with_token("/cgi-bin/message/update_template_card", payload)

    async def webhook_send(self, key: str, payload: JsonObject) -> JsonObject:
        """Group-robot message: authorised by the robot key, not by an access token."""
        answer = await self._request("POST", "/cgi-bin/webhook/send", params={"key": key}, json=payload)
        return _checked(answer)

    async def _call_with_token(self, path: str, payload: JsonObject) -> JsonObject:
        token = await self._access_token()
        answer = await self._post_with_token(path, token, payload)
        if _errcode(answer) in _TOKEN_ERRCODES:
            self._cache.forget(self._cache_key, token)  # another replica may have stored a fresh one
            token = await self._refresh_token(stale=token)
            answer = await self._post_with_token(path, token, payload)
            if _errcode(answer) in _TOKEN_ERRCODES:
                raise WeComRetryable(_errcode(answer), "fresh access token refused: " + _errmsg(answer))
        return _checked(answer)

    async def _post_with_token(self, path: str, token: str, payload: JsonObject) -> JsonObject:
        return await self._request("POST", path, params={"access_token": token}, json=payload)

    async def _access_token(self) -> str:
        cached = await self._cache.get(self._cache_key)
        if cached is not None and self._still_fresh(cached[1]):
            return cached[0]
        return await self._refresh_token(stale=cached[0] if cached else None)

    async def _refresh_token(self, stale: str | None) -> str:
        """Fetch a token unless someone (another task or replica) already replaced the stale one."""
        async with self._refresh_lock:
            cached = await self._cache.get(self._cache_key)
            if cached is not None and cached[0] != stale and self._still_fresh(cached[1]):
                return cached[0]
            return await self._fetch_token()

    async def _fetch_token(self) -> str:
        params = {"corpid": self._corp_id, "corpsecret": self._secret}
        answer = _checked(await self._request("GET", "/cgi-bin/gettoken", params=params))
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise WeComRetryable(None, "gettoken answer has no access_token")
        expires_in = float(answer.get("expires_in") or DEFAULT_TOKEN_TTL_S)
        await self._cache.put(self._cache_key, token, self._clock() + expires_in)
        return token

    def _still_fresh(self, expires_at: float) -> bool:
        return expires_at - self._clock() > TOKEN_REFRESH_MARGIN_S

    async def _request(
        self, method: str, path: str, *, params: dict[str, str], json: JsonObject | None = None
    ) -> JsonObject:
        try:
            response = await self._http.request(method, self._api_base + path, params=params, json=json)
        except httpx.TransportError as exc:  # connection refused or dropped, time-outs
            raise WeComRetryable(None, f"{path}: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise WeComRetryable(None, f"{path}: HTTP {response.status_code}")
        if response.status_code != 200:
            raise WeComRejected(None, f"{path}: HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError as exc:
            raise WeComRetryable(None, f"{path}: answer is not JSON") from exc
        if not isinstance(answer, dict):
            raise WeComRetryable(None, f"{path}: answer is not a JSON object")
        return answer


def _errcode(answer: JsonObject) -> int:
    try:
        return int(answer.get("errcode", 0))
    except (TypeError, ValueError):
        return -1  # an unreadable errcode is treated like "system busy"


def _errmsg(answer: JsonObject) -> str:
    return str(answer.get("errmsg", ""))


def _checked(answer: JsonObject) -> JsonObject:
    errcode = _errcode(answer)
    if errcode == 0:
        return answer
    if errcode in _RETRYABLE_ERRCODES:
        raise WeComRetryable(errcode, _errmsg(answer))
    raise WeComRejected(errcode, _errmsg(answer))
