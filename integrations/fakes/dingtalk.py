"""In-process fake of the DingTalk open API and robot, speaking its wire format, recording what it accepts.

Routes: POST /v1.0/oauth2/accessToken, POST /v1.0/robot/oToMessages/batchSend, POST
/v1.0/card/instances/createAndDeliver (interactive cards into the robot's single chat), and the session webhooks it
hands out (POST /robot/sendBySession?session=...). Failures and stalls can be queued per route; see
fail_next and stall_next. `robot_message` builds a signed HTTP-mode robot callback, as DingTalk sends it;
`card_click` builds the signed HTTP-mode callback of a click on an interactive card's button. The card route and
`card_click` are in integrations/fakes/dingtalk_cards.py, what the routes record in dingtalk_received.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from integrations.fakes.dingtalk_cards import CARD_CREATE_PATH, DingTalkCards
from integrations.fakes.dingtalk_received import JsonObject, Received, refusal
from integrations.fakes.dingtalk_received import visible_text as visible_text  # tests take it from here
from integrations.fakes.server import FakeServer, json_body

TOKEN_PATH = "/v1.0/oauth2/accessToken"
BATCH_SEND_PATH = "/v1.0/robot/oToMessages/batchSend"
SESSION_PATH = "/robot/sendBySession"

TOKEN_TTL_S = 7200
SESSION_TTL_S = 5400  # DingTalk's sessionWebhook lives about 1.5 hours
SESSION_EXPIRED = 300001  # fake's errcode for an unknown or expired session webhook

_MSG_KEY_KINDS = {"sampleText": "text", "sampleMarkdown": "markdown", "sampleActionCard": "actionCard",
                  **{f"sampleActionCard{n}": "actionCard" for n in range(2, 7)}}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class _Failure:
    status: int
    code: str

    def response(self) -> web.Response:
        return web.json_response({"code": self.code, "message": "fake DingTalk failure",
                                  "requestid": secrets.token_hex(8)}, status=self.status)


@dataclass
class _Session:
    conversation: str
    staff_id: str
    expires_at_ms: int


class FakeDingTalk(DingTalkCards, FakeServer):
    def __init__(
        self,
        *,
        app_key: str = "dingfakeappkey",
        app_secret: str = "fake-app-secret",
        clock: Callable[[], float] = time.time,
        card_api_secret: str = "fake-card-api-secret",
    ) -> None:
        self.app_key = app_key
        self.app_secret = app_secret
        self.card_api_secret = card_api_secret  # the apiSecret registered with the card callbackRouteKey
        self.cards: dict[str, JsonObject] = {}  # outTrackId -> the createAndDeliver body that created it
        self.received: list[Received] = []
        self.requests: list[tuple[str, JsonObject]] = []  # (path, body) of every accepted send, as sent
        self.token_requests = 0
        self.invalid_staff_ids: set[str] = set()  # batchSend reports these in invalidStaffIdList
        self.flow_controlled_staff_ids: set[str] = set()
        self._clock = clock
        self._last_stamp_ms = 0
        self._tokens: dict[str, float] = {}  # token -> expires at (fake clock, seconds)
        self._sessions: dict[str, _Session] = {}
        self._path_failures: dict[str, deque[_Failure]] = {}
        self._path_stalls: dict[str, deque[float]] = {}
        self.app = self._build_app()

    # -- test controls -------------------------------------------------------------------------

    def fail_next(self, status: int = 500, times: int = 1, path: str = BATCH_SEND_PATH, code: str = "") -> None:
        """Queue `times` answers of HTTP `status` (with a DingTalk error body) for `path`."""
        queue = self._path_failures.setdefault(path, deque())
        queue.extend(_Failure(status, code or f"fake.{status}") for _ in range(times))

    def stall_next(self, seconds: float, times: int = 1, path: str = BATCH_SEND_PATH) -> None:
        self._queue_stall(seconds, times, path)

    def expire_tokens(self) -> None:
        for token in self._tokens:
            self._tokens[token] = float("-inf")

    def expire_sessions(self) -> None:
        for session in self._sessions.values():
            session.expires_at_ms = 0

    def session_webhook_url(self, conversation: str, *, staff_id: str = "", ttl_s: float = SESSION_TTL_S) -> str:
        """A new sessionWebhook for `conversation`, as DingTalk puts in each robot callback."""
        session = secrets.token_urlsafe(24)
        self._sessions[session] = _Session(conversation, staff_id, self.now_ms() + int(ttl_s * 1000))
        return f"{self.base_url}{SESSION_PATH}?session={session}"

    def session_expires_ms(self, url: str) -> int:
        return self._sessions[url.rpartition("session=")[2]].expires_at_ms

    def sign(self, timestamp_ms: int) -> str:
        message = f"{timestamp_ms}\n{self.app_secret}".encode()
        return base64.b64encode(hmac.new(self.app_secret.encode(), message, hashlib.sha256).digest()).decode()

    def robot_message(
        self,
        sender_staff_id: str,
        text: str,
        msg_id: str,
        conversation_id: str,
        conversation_type: str = "1",
        *,
        timestamp_ms: int | None = None,
        session_ttl_s: float = SESSION_TTL_S,
    ) -> tuple[dict[str, str], JsonObject]:
        """(headers, JSON body) of an HTTP-mode robot callback, signed with the app secret."""
        now_ms = self.now_ms()
        webhook = self.session_webhook_url(conversation_id, staff_id=sender_staff_id, ttl_s=session_ttl_s)
        body: JsonObject = {
            "conversationId": conversation_id,
            "conversationType": conversation_type,
            "msgId": msg_id,
            "msgtype": "text",
            "text": {"content": text},
            "createAt": now_ms,
            "senderId": "$:LWCP_v1:$" + hashlib.sha256(sender_staff_id.encode()).hexdigest()[:24],
            "senderStaffId": sender_staff_id,
            "senderNick": sender_staff_id,
            "senderCorpId": "dingfakecorp",
            "chatbotUserId": "$:LWCP_v1:$fakebot",
            "robotCode": self.app_key,
            "isAdmin": False,
            "isInAtList": conversation_type == "2",
            "sessionWebhook": webhook,
            "sessionWebhookExpiredTime": self.session_expires_ms(webhook),
        }
        if conversation_type == "2":
            body["conversationTitle"] = "门店群"
            body["atUsers"] = [{"dingtalkId": "$:LWCP_v1:$fakebot"}]
        stamp = timestamp_ms if timestamp_ms is not None else self._send_stamp()
        return {"timestamp": str(stamp), "sign": self.sign(stamp)}, body


    def _send_stamp(self) -> int:
        """The time DingTalk stamps a callback with (ms); each callback the fake sends gets its own, as the
        receiving side accepts a timestamp+sign pair with one body only."""
        self._last_stamp_ms = max(int(time.time() * 1000), self._last_stamp_ms + 1)
        return self._last_stamp_ms


    def messages_to(self, staff_id: str) -> list[Received]:
        return [m for m in self.received if staff_id in m.to]

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- wire ----------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self.injected_trouble])
        app.router.add_post(TOKEN_PATH, self._access_token)
        app.router.add_post(BATCH_SEND_PATH, self._batch_send)
        app.router.add_post(SESSION_PATH, self._session_send)
        app.router.add_post(CARD_CREATE_PATH, self._create_and_deliver)
        return app

    async def _access_token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        body = await json_body(request)
        if body is None:
            return refusal(400, "MissingBody", "body is mandatory for this action.")
        if body.get("appKey") != self.app_key or body.get("appSecret") != self.app_secret:
            return refusal(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
        token = secrets.token_hex(16)
        self._tokens[token] = self._clock() + TOKEN_TTL_S
        return web.json_response({"accessToken": token, "expireIn": TOKEN_TTL_S})

    async def _batch_send(self, request: web.Request) -> web.Response:
        expires_at = self._tokens.get(request.headers.get("x-acs-dingtalk-access-token", ""))
        if expires_at is None or expires_at <= self._clock():
            return refusal(400, "InvalidAuthentication", "不合法的access_token")
        body = await json_body(request)
        if body is None:
            return refusal(400, "MissingBody", "body is mandatory for this action.")
        user_ids, msg_key, raw_param = body.get("userIds"), body.get("msgKey"), body.get("msgParam")
        if body.get("robotCode") != self.app_key:
            return refusal(400, "resource.not.found", "robot 不存在")
        if not isinstance(user_ids, list) or not user_ids or not all(isinstance(u, str) for u in user_ids):
            return refusal(400, "param.userIds.invalid", "userIds 不合法")
        kind = _MSG_KEY_KINDS.get(str(msg_key))
        param = _loads_object(raw_param) if isinstance(raw_param, str) else None
        if kind is None or param is None:
            return refusal(400, "param.msgParam.invalid", "msgKey 或 msgParam 不合法")
        invalid = [u for u in user_ids if u in self.invalid_staff_ids]
        throttled = [u for u in user_ids if u in self.flow_controlled_staff_ids and u not in invalid]
        reached = tuple(u for u in user_ids if u not in invalid and u not in throttled)
        if reached:
            self.requests.append((BATCH_SEND_PATH, body))
            self.received.append(Received("batch", reached, "", kind, _batch_content(kind, param)))
        return web.json_response({"processQueryKey": secrets.token_urlsafe(16), "invalidStaffIdList": invalid,
                                  "flowControlledStaffIdList": throttled})


    async def _session_send(self, request: web.Request) -> web.Response:
        session = self._sessions.get(request.query.get("session", ""))
        if session is None or session.expires_at_ms <= self.now_ms():
            return web.json_response({"errcode": SESSION_EXPIRED, "errmsg": "session webhook expired"})
        body = await json_body(request)
        msgtype = body.get("msgtype") if body else None
        content = body.get(msgtype) if body and isinstance(msgtype, str) else None
        if body is None or msgtype not in ("text", "markdown", "actionCard") or not isinstance(content, dict):
            return web.json_response({"errcode": 40035, "errmsg": "缺少参数 msgtype"})
        self.requests.append((SESSION_PATH, body))
        self.received.append(Received("session", (session.staff_id,), session.conversation, str(msgtype),
                                      _session_content(str(msgtype), content)))
        return web.json_response({"errcode": 0, "errmsg": "ok"})



def _batch_content(kind: str, param: JsonObject) -> JsonObject:
    if kind != "actionCard":
        return dict(param)
    if "singleTitle" in param:
        buttons = [(param["singleTitle"], param.get("singleURL", ""))]
    else:
        buttons = [(param[f"actionTitle{n}"], param.get(f"actionURL{n}", ""))
                   for n in range(1, 6) if f"actionTitle{n}" in param]
    return {"title": param.get("title", ""), "text": param.get("text", ""), "buttons": buttons}


def _session_content(kind: str, content: JsonObject) -> JsonObject:
    if kind != "actionCard":
        return dict(content)
    if "singleTitle" in content:
        buttons = [(content["singleTitle"], content.get("singleURL", ""))]
    else:
        buttons = [(b.get("title", ""), b.get("actionURL", "")) for b in content.get("btns", [])]
    return {"title": content.get("title", ""), "text": content.get("text", ""), "buttons": buttons}


def _loads_object(raw: str) -> JsonObject | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
