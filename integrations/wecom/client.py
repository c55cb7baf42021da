"""Async client for the WeCom server API: errcode classification and sending; a TokenKeeper keeps its token."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from integrations.tokens import DEFAULT_TOKEN_TTL_S, TokenCache, TokenKeeper

# invalid credential / invalid access_token / access_token expired: fetch a new token and repeat once.
_TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
# system busy / API call frequency limit / API concurrency limit.
_RETRYABLE_ERRCODES = frozenset({-1, 45009, 45033})
# The request never left this machine: nothing can have been done.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)

JsonObject = dict[str, Any]


class WeComError(Exception):
    """`errcode` is WeCom's errcode, or None when no WeCom answer was read (network, HTTP status).

    `maybe_done`: the request may have been carried out although no answer says so (it reached WeCom and the
    answer was lost, late or a 5xx) — a message may have been shown, and counts against the per-member cap.
    """

    def __init__(self, errcode: int | None, message: str, *, maybe_done: bool = False) -> None:
        super().__init__(f"errcode {errcode}: {message}")
        self.errcode = errcode
        self.message = message
        self.maybe_done = maybe_done


class WeComRetryable(WeComError):
    """The call may succeed later: WeCom was busy, throttled, unreachable or failed inside."""


class WeComRejected(WeComError):
    """WeCom refused the call for good: repeating the same payload will not help."""


class _TokenRefused(WeComError):
    """The access token was refused: the token keeper fetches a new one and repeats once."""


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
        self._tokens = TokenKeeper(
            token_cache, f"{corp_id}:{agent_id}", self._fetch_token, refused=_TokenRefused, clock=clock
        )

    async def send(self, payload: JsonObject) -> JsonObject:
        """POST message/send; the answer carries msgid, and response_code for template cards."""
        return await self._call_with_token("/cgi-bin/message/send", payload)

    async def update_template_card(self, payload: JsonObject) -> JsonObject:
        return await self._call_with_token("/cgi-bin/message/update_template_card", payload)

    async def webhook_send(self, key: str, payload: JsonObject) -> JsonObject:
        """Group-robot message: authorised by the robot key, not by an access token."""
        answer = await self._request("POST", "/cgi-bin/webhook/send", params={"key": key}, json=payload)
        return _checked(answer)

    async def check_credentials(self) -> None:
        """One gettoken call, outside the token cache (`orderbot check`); raises WeComError as a send would."""
        await self._fetch_token()

    async def _call_with_token(self, path: str, payload: JsonObject) -> JsonObject:
        try:
            return await self._tokens.call(lambda token: self._post_with_token(path, token, payload))
        except _TokenRefused as refused:
            raise WeComRetryable(refused.errcode, "fresh access token refused: " + refused.message) from refused

    async def _post_with_token(self, path: str, token: str, payload: JsonObject) -> JsonObject:
        answer = await self._request("POST", path, params={"access_token": token}, json=payload)
        if _errcode(answer) in _TOKEN_ERRCODES:
            raise _TokenRefused(_errcode(answer), _errmsg(answer))
        return _checked(answer)

    async def _fetch_token(self) -> tuple[str, float]:
        params = {"corpid": self._corp_id, "corpsecret": self._secret}
        try:
            answer = _checked(await self._request("GET", "/cgi-bin/gettoken", params=params))
        except WeComError as exc:
            exc.maybe_done = False  # whatever became of the token call, no message went out
            raise
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise WeComRetryable(None, "gettoken answer has no access_token")
        return token, float(answer.get("expires_in") or DEFAULT_TOKEN_TTL_S)

    async def _request(
        self, method: str, path: str, *, params: dict[str, str], json: JsonObject | None = None
    ) -> JsonObject:
        try:
            response = await self._http.request(method, self._api_base + path, params=params, json=json)
        except httpx.TransportError as exc:  # connection refused or dropped, time-outs
            maybe = not isinstance(exc, _NOT_SENT)
            raise WeComRetryable(None, f"{path}: {type(exc).__name__}", maybe_done=maybe) from exc
        if response.status_code >= 500 or response.status_code == 429:
            maybe = response.status_code >= 500
            raise WeComRetryable(None, f"{path}: HTTP {response.status_code}", maybe_done=maybe)
        if response.status_code != 200:
            raise WeComRejected(None, f"{path}: HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError as exc:
            raise WeComRetryable(None, f"{path}: answer is not JSON", maybe_done=True) from exc
        if not isinstance(answer, dict):
            raise WeComRetryable(None, f"{path}: answer is not a JSON object", maybe_done=True)
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
