"""In-process fake of the WeCom server API, speaking its wire format, recording what it accepts.

Routes: GET /cgi-bin/gettoken, POST /cgi-bin/message/send, POST /cgi-bin/message/update_template_card,
POST /cgi-bin/webhook/send. Failures and stalls can be queued per route (fail_next, stall_next), drawn at random
(chaos) or made total (go_down). Like WeCom, app messages beyond 30 a minute to one member are answered "ok" and
silently dropped (see `dropped`); a message hidden by the duplicate check is not shown, so it does not count.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from integrations.fakes.server import ErrorOrStatus, FakeServer, json_body
from integrations.fakes.wecom_signer import DEFAULT_AGENT_ID, DEFAULT_CORP_ID

SEND_PATH = "/cgi-bin/message/send"
UPDATE_CARD_PATH = "/cgi-bin/message/update_template_card"
WEBHOOK_PATH = "/cgi-bin/webhook/send"
GETTOKEN_PATH = "/cgi-bin/gettoken"

TOKEN_TTL_S = 7200
WEBHOOK_LIMIT_PER_MINUTE = 20
APP_LIMIT_PER_MINUTE = 30  # app messages to one member; WeCom drops the rest without an error
CHAOS_KINDS = ("busy", "throttled", "http500", "shown_then_late")
# WeCom documents that a response_code can be used once but not the errcode for a second use;
# 40180 is this fake's stand-in, not a confirmed WeCom value.
RESPONSE_CODE_USED = 40180

_ERRMSG = {
    -1: "system busy",
    40001: "invalid credential",
    40008: "invalid message type",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40056: "invalid agentid",
    41001: "access_token missing",
    42001: "access_token expired",
    45009: "api freq out of limit",
    45033: "api concurrent out of limit",
    47001: "data format error",
    93000: "invalid webhook url",
    RESPONSE_CODE_USED: "response_code has been used or is invalid",
}

JsonObject = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(errcode: int) -> web.Response:
    return web.json_response({"errcode": errcode, "errmsg": _ERRMSG.get(errcode, "fake WeCom error")})


def _ok(**fields: Any) -> web.Response:
    return web.json_response({"errcode": 0, "errmsg": "ok", **fields})


class FakeWeCom(FakeServer):
    def __init__(
        self,
        *,
        corp_id: str = DEFAULT_CORP_ID,
        secret: str = "fake-secret",
        agent_id: int = DEFAULT_AGENT_ID,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = agent_id
        self.messages: list[JsonObject] = []
        self.card_updates: list[JsonObject] = []
        self.webhook_messages: list[JsonObject] = []
        self.webhook_keys: list[str] = []  # the robot key of each webhook_messages entry
        self.dropped: list[JsonObject] = []  # accepted with "ok" but never shown: over the per-member cap
        self.token_requests = 0
        self._clock = clock
        self._tokens: dict[str, float] = {}  # token -> expires at (fake clock)
        self._response_codes: dict[str, bool] = {}  # code -> already used
        self._recent_sends: dict[str, tuple[float, JsonObject]] = {}  # duplicate-check memory
        self._webhook_times: dict[str, deque[float]] = {}
        self._path_failures: dict[str, deque[ErrorOrStatus]] = {}
        self._path_stalls: dict[str, deque[float]] = {}
        self._member_times: dict[str, deque[float]] = {}
        self._chaos: tuple[float, random.Random, tuple[str, ...], float] | None = None
        self.down = False  # every route answers HTTP 503 while True
        self.app = self._build_app()

    # -- test controls -------------------------------------------------------------------------

    def fail_next(
        self, errcode: int | None = None, status: int | None = None, times: int = 1, path: str = SEND_PATH
    ) -> None:
        """Queue `times` failures for `path`: an errcode answer (HTTP 200) or a bare HTTP status."""
        if (errcode is None) == (status is None):
            raise ValueError("give exactly one of errcode or status")
        queue = self._path_failures.setdefault(path, deque())
        queue.extend(ErrorOrStatus(errcode, status, _error, "fake WeCom failure") for _ in range(times))

    def stall_next(self, seconds: float, times: int = 1, path: str = SEND_PATH) -> None:
        self._queue_stall(seconds, times, path)

    def chaos(
        self, rate: float, *, seed: int = 0, kinds: tuple[str, ...] = CHAOS_KINDS, late_s: float = 10.0
    ) -> None:
        """From now on a share `rate` of message/send calls meets a random trouble of `kinds`: "busy" (errcode
        -1), "throttled" (45009), "http500", or "shown_then_late" (the message is shown, the answer comes
        `late_s` later — after the client gave up). rate 0 ends it."""
        self._chaos = (rate, random.Random(seed), kinds, late_s) if rate > 0 else None

    def set_clock(self, clock: Callable[[], float]) -> None:
        """Run on a test's clock (seconds): the duplicate check and the per-member cap pass as the test moves it."""
        self._clock = clock

    def go_down(self, down: bool = True) -> None:
        self.down = down

    def expire_tokens(self) -> None:
        for token in self._tokens:
            self._tokens[token] = float("-inf")

    def issue_response_code(self) -> str:
        """A one-use response_code, as WeCom puts in a template_card_event callback."""
        code = "rc-" + secrets.token_hex(12)
        self._response_codes[code] = False
        return code

    # -- wire ----------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._outage, self.injected_trouble])
        app.router.add_get(GETTOKEN_PATH, self._gettoken)
        app.router.add_post(SEND_PATH, self._send)
        app.router.add_post(UPDATE_CARD_PATH, self._update_template_card)
        app.router.add_post(WEBHOOK_PATH, self._webhook_send)
        return app

    @web.middleware
    async def _outage(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.down:
            return web.Response(status=503, text="fake WeCom is down")
        return await handler(request)

    async def _gettoken(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        if request.query.get("corpid") != self.corp_id:
            return _error(40013)
        if request.query.get("corpsecret") != self.secret:
            return _error(40001)
        token = secrets.token_urlsafe(48)
        self._tokens[token] = self._clock() + TOKEN_TTL_S
        return _ok(access_token=token, expires_in=TOKEN_TTL_S)

    async def _app_call(self, request: web.Request) -> JsonObject | web.Response:
        """The body of a call made as the application (token, JSON, agentid checked), or the error answer."""
        refusal = self._token_refusal(request)
        if refusal is not None:
            return _error(refusal)
        payload = await json_body(request)
        if payload is None:
            return _error(47001)
        if payload.get("agentid") != self.agent_id:
            return _error(40056)
        return payload

    async def _send(self, request: web.Request) -> web.Response:
        payload = await self._app_call(request)
        if isinstance(payload, web.Response):
            return payload
        msgtype = payload.get("msgtype")
        if not isinstance(msgtype, str) or msgtype not in payload:
            return _error(40008)
        trouble = self._draw_chaos()
        if trouble in ("busy", "throttled"):
            return _error(-1 if trouble == "busy" else 45009)
        if trouble == "http500":
            return web.Response(status=500, text="fake WeCom failure")
        answer = self._accept_message(payload)
        if trouble == "shown_then_late" and self._chaos is not None:
            await asyncio.sleep(self._chaos[3])
        return web.json_response(answer)

    def _draw_chaos(self) -> str | None:
        if self._chaos is None:
            return None
        rate, rng, kinds, _ = self._chaos
        return rng.choice(kinds) if rng.random() < rate else None

    def _accept_message(self, payload: JsonObject) -> JsonObject:
        """Record a message unless duplicate check finds the same one inside its interval; over the
        per-member cap it is answered "ok" and dropped, as WeCom does."""
        fingerprint = json.dumps(payload, sort_keys=True, ensure_ascii=False)
        now = self._clock()
        if payload.get("enable_duplicate_check") == 1:
            interval = float(payload.get("duplicate_check_interval", 1800))
            earlier = self._recent_sends.get(fingerprint)
            if earlier is not None and now - earlier[0] < interval:
                return dict(earlier[1])
        answer: JsonObject = {"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": secrets.token_hex(16)}
        if payload["msgtype"] == "template_card":
            answer["response_code"] = self.issue_response_code()
        self._recent_sends[fingerprint] = (now, answer)
        if self._over_member_cap(str(payload.get("touser", "")), now):
            self.dropped.append(payload)
        else:
            self.messages.append(payload)
        return answer

    def _over_member_cap(self, touser: str, now: float) -> bool:
        sent = self._member_times.setdefault(touser, deque())
        while sent and now - sent[0] >= 60:
            sent.popleft()
        if len(sent) >= APP_LIMIT_PER_MINUTE:
            return True
        sent.append(now)
        return False

    async def _update_template_card(self, request: web.Request) -> web.Response:
        payload = await self._app_call(request)
        if isinstance(payload, web.Response):
            return payload
        code = payload.get("response_code")
        if not isinstance(code, str) or self._response_codes.get(code, True):
            return _error(RESPONSE_CODE_USED)
        self._response_codes[code] = True
        self.card_updates.append(payload)
        return _ok(invaliduser=[])

    async def _webhook_send(self, request: web.Request) -> web.Response:
        key = request.query.get("key", "")
        if not key:
            return _error(93000)
        payload = await json_body(request)
        if payload is None:
            return _error(47001)
        sent = self._webhook_times.setdefault(key, deque())
        now = self._clock()
        while sent and now - sent[0] >= 60:
            sent.popleft()
        if len(sent) >= WEBHOOK_LIMIT_PER_MINUTE:
            return _error(45009)
        sent.append(now)
        self.webhook_messages.append(payload)
        self.webhook_keys.append(key)
        return _ok()

    def _token_refusal(self, request: web.Request) -> int | None:
        token = request.query.get("access_token")
        if not token:
            return 41001
        expires_at = self._tokens.get(token)
        if expires_at is None:
            return 40014
        if expires_at <= self._clock():
            return 42001
        return None
