"""Async client for the DingTalk open API (its token kept by a TokenKeeper): robot batchSend, sessionWebhook replies,
and interactive cards (POST /v1.0/card/instances/createAndDeliver, open.dingtalk.com/document/development/
create-and-deliver-cards)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from integrations.tokens import DEFAULT_TOKEN_TTL_S, TokenCache, TokenKeeper

TOKEN_PATH = "/v1.0/oauth2/accessToken"
BATCH_SEND_PATH = "/v1.0/robot/oToMessages/batchSend"
CARD_CREATE_AND_DELIVER_PATH = "/v1.0/card/instances/createAndDeliver"
CARD_ALREADY_EXISTS = "param.cardAlreadyExist"
SESSION_MARGIN_MS = 60_000  # a webhook about to expire is not worth the try
DINGTALK_WEBHOOK_HOSTS = ("oapi.dingtalk.com", "api.dingtalk.com")
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})

# api.dingtalk.com answers a bad or expired token with HTTP 400 or 401 and this code.
_TOKEN_CODES = frozenset({"InvalidAuthentication", "invalidAuthentication"})
_THROTTLE_MARKERS = ("QpsLimit", "Throttling", "FlowControl", "send.too.fast")

JsonObject = dict[str, Any]


class DingTalkError(Exception):
    """`code` is DingTalk's error code (a string, or the errcode of a webhook answer), or None."""

    def __init__(self, code: str | None, message: str) -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.code = code
        self.message = message


class DingTalkRetryable(DingTalkError):
    """The call may succeed later: DingTalk was busy, throttled, unreachable or failed inside."""


class DingTalkRejected(DingTalkError):
    """DingTalk refused the call for good: repeating the same payload will not help."""


@dataclass(frozen=True)
class SessionWebhook:
    """The reply URL a robot callback carries, and when it stops working (epoch ms)."""

    url: str
    expires_at_ms: int

    def hint(self) -> str:
        return f"{self.url}|{self.expires_at_ms}"

    @classmethod
    def parse(cls, hint: object) -> SessionWebhook | None:
        if not isinstance(hint, str) or "|" not in hint:
            return None
        url, _, expires = hint.rpartition("|")
        if not url.startswith(("http://", "https://")) or not expires.isdigit():
            return None
        return cls(url, int(expires))

    def valid_at(self, now_ms: int) -> bool:
        return self.expires_at_ms - now_ms > SESSION_MARGIN_MS

    def allowed(self, hosts: Collection[str]) -> bool:
        return webhook_allowed(self.url, hosts)


def webhook_allowed(url: str, hosts: Collection[str]) -> bool:
    """True when `url` is a session webhook on one of `hosts` (DingTalk's own, by default).

    The callback body that names the URL is not signed, so a forged or altered body could otherwise have a reply
    (with a customer's name and address) posted anywhere. Only https on the default port is accepted, without
    user info; a loopback host (the fake, when listed) may use http and any port.
    """
    try:
        parts = urlsplit(url)
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        return False
    if not host or host not in {h.strip().lower() for h in hosts} or parts.username or parts.password:
        return False
    if host in _LOOPBACK:
        return parts.scheme in ("http", "https")
    return parts.scheme == "https" and port in (None, 443)


class DingTalkClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_base: str,
        app_key: str,
        app_secret: str,
        token_cache: TokenCache,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._api_base = api_base.rstrip("/")
        self.app_key = app_key  # also the robotCode of the app's robot
        self._app_secret = app_secret
        self._tokens = TokenKeeper(
            token_cache, f"dingtalk:{app_key}", self._fetch_token, refused=_TokenRefused, clock=clock
        )

    async def batch_send(self, user_ids: list[str], msg_key: str, msg_param: JsonObject) -> JsonObject:
        """Robot message to people (by staff id). Meant for one person per call: a flow-controlled or
        invalid staff id fails the whole call, so a retry never repeats a message someone already has."""
        body = {
            "robotCode": self.app_key, "userIds": list(user_ids), "msgKey": msg_key,
            "msgParam": json.dumps(msg_param, ensure_ascii=False),
        }
        answer = await self._call_with_token(BATCH_SEND_PATH, body)
        throttled = answer.get("flowControlledStaffIdList") or []
        if throttled:
            raise DingTalkRetryable("flowControlled", f"flow-controlled staff ids: {throttled}")
        invalid = answer.get("invalidStaffIdList") or []
        if invalid:
            raise DingTalkRejected("invalidStaffId", f"invalid staff ids: {invalid}")
        return answer

    async def create_and_deliver(self, body: JsonObject) -> JsonObject:
        """Create an interactive card and deliver it (body: integrations.dingtalk.render.render_interactive).

        An outTrackId names one card for good: a repeat after an answer that got lost is told
        "param.cardAlreadyExist", which means the first call went through. A space the card did not reach
        (deliverResults[].success false) is refused for good: repeating would meet cardAlreadyExist.
        """
        try:
            answer = await self._call_with_token(CARD_CREATE_AND_DELIVER_PATH, body)
        except DingTalkRejected as refused:
            if refused.code == CARD_ALREADY_EXISTS:
                return {"success": True, "result": {"outTrackId": body.get("outTrackId")}, "repeated": True}
            raise
        result = answer.get("result")
        results = result.get("deliverResults") if isinstance(result, dict) else None
        failed = [r for r in results or [] if isinstance(r, dict) and not r.get("success")]
        if answer.get("success") is False or failed:
            reasons = [str(r.get("errorMsg", "")) for r in failed]
            raise DingTalkRejected("cardDeliverFailed", f"card {body.get('outTrackId')} not delivered: {reasons}")
        return answer

    async def session_reply(self, webhook_url: str, body: JsonObject) -> JsonObject:
        """Answer in the conversation a callback came from; the URL is its own credential."""
        answer = await self._request(webhook_url, body=body, headers={})
        errcode = answer.get("errcode", 0)
        if errcode not in (0, "0"):
            raise DingTalkRejected(str(errcode), str(answer.get("errmsg", "")))
        return answer

    async def check_credentials(self) -> None:
        """One accessToken call, outside the token cache (`orderbot check`); raises DingTalkError."""
        await self._fetch_token()

    async def _call_with_token(self, path: str, body: JsonObject) -> JsonObject:
        try:
            return await self._tokens.call(lambda token: self._post_with_token(path, token, body))
        except _TokenRefused as refused:
            raise DingTalkRetryable(refused.code, "fresh access token refused: " + refused.message) from refused

    async def _post_with_token(self, path: str, token: str, body: JsonObject) -> JsonObject:
        return await self._request(
            self._api_base + path, body=body, headers={"x-acs-dingtalk-access-token": token}, token_call=True
        )

    async def _fetch_token(self) -> tuple[str, float]:
        answer = await self._request(
            self._api_base + TOKEN_PATH, body={"appKey": self.app_key, "appSecret": self._app_secret}, headers={}
        )
        token = answer.get("accessToken")
        if not isinstance(token, str) or not token:
            raise DingTalkRetryable(None, "accessToken answer has no accessToken")
        try:
            return token, float(answer.get("expireIn") or DEFAULT_TOKEN_TTL_S)
        except (TypeError, ValueError):
            return token, DEFAULT_TOKEN_TTL_S

    async def _request(
        self, url: str, *, body: JsonObject, headers: dict[str, str], token_call: bool = False
    ) -> JsonObject:
        where = url if not url.startswith(self._api_base) else url[len(self._api_base):]
        where = where.split("?", 1)[0]  # a session webhook's query is its credential: keep it out of errors
        try:
            response = await self._http.post(url, json=body, headers=headers)
        except httpx.TransportError as exc:  # connection refused or dropped, time-outs
            raise DingTalkRetryable(None, f"{where}: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise DingTalkRetryable(None, f"{where}: HTTP {response.status_code}")
        answer = _json_object(response)
        if response.status_code == 200:
            if answer is None:
                raise DingTalkRetryable(None, f"{where}: answer is not a JSON object")
            return answer
        code = str(answer.get("code", "")) if answer else ""
        message = f"{where}: HTTP {response.status_code} {answer.get('message', '') if answer else ''}".strip()
        if token_call and (response.status_code == 401 or code in _TOKEN_CODES):
            raise _TokenRefused(code or None, message)
        if any(marker in code for marker in _THROTTLE_MARKERS):
            raise DingTalkRetryable(code, message)
        raise DingTalkRejected(code or None, message)


class _TokenRefused(DingTalkError):
    """The access token was refused: fetch a new one and repeat once."""


def _json_object(response: httpx.Response) -> JsonObject | None:
    try:
        answer = response.json()
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None
