"""DingTalk interactive-card (互动卡片) callbacks: a button click comes back as a signed HTTP POST.

Configured with `dingtalk.card_template_id`, `dingtalk.card_callback_route_key` and `dingtalk.card_callback_secret`
(all three, besides app_key/app_secret): cards with buttons are then sent as interactive cards
(integrations/dingtalk/render.py `render_interactive`, client `create_and_deliver`), and this route takes their
clicks. Not configured: cards stay actionCards whose buttons send the typed command, and this route answers 403.

Wire format, from DingTalk's open-platform documentation:
- 创建并投放卡片 (open.dingtalk.com/document/development/create-and-deliver-cards):
  POST /v1.0/card/instances/createAndDeliver with `cardTemplateId`, our `outTrackId` (one card for good),
  `callbackType` "HTTP", `callbackRouteKey`, `cardData.cardParamMap` (string values only), `openSpaceId`
  "dtv1.card//IM_ROBOT.<userId>" with `imRobotOpenSpaceModel` and `imRobotOpenDeliverModel.robotCode`.
- 注册卡片回调地址 (…/register-card-callback-address): POST /v1.0/card/callbacks/register maps a
  `callbackRouteKey` to our `callbackUrl` (…/dingtalk/card/callback) with an optional `apiSecret`. Registration
  is a one-off operator step; the app does not call it.
- 事件回调 (…/event-callback-card), HTTP mode: a click on a 回传请求 button POSTs
  `{"type": "actionCallback", "outTrackId", "corpId", "userId",
    "content": "{\\"cardPrivateData\\": {\\"actionIds\\": [...], \\"params\\": {...}}}"}`
  (`content` is a JSON string). With an apiSecret registered, the request carries headers
  `x-ddpaas-signature-timestamp` and `x-ddpaas-signature` = base64(HMAC-SHA256(key=apiSecret,
  msg=str(timestamp))). The answer may carry `cardData` / `userPrivateData` / `cardUpdateOptions` to update the
  card, and must come within 2 seconds.
- 消息卡片发送及更新 (…/message-card-sending-and-updating) shows the same callback with the click in `value`
  instead of `content`, and `params` beside `cardPrivateData`; both shapes are read.

- The dingtalk-stream SDK's CardCallbackMessage (topic /v1.0/card/instances/callback) reads the same body:
  extension, corpId, userIdType, type "actionCallback", userId, content, spaceId, outTrackId, value.

What a click must be before it reaches the inbox (each refusal is a 4xx, and nothing is stored):
- signed, and fresh within dingtalk.replay_window_s; its timestamp+signature accepted with one body only
  (integrations/dingtalk/replay.py), since only the timestamp is signed;
- on a card we issued: an outTrackId of at most 111 characters (domain/limits.py DINGTALK_CARD_ID) naming a
  "dingtalk_chat" outbox row that sent that card (integrations/dingtalk/issued_cards.py);
- from the person the card was sent to (`userId` = that row's recipient), with the command of one of the
  card's buttons;
- used once: its inbox id is derived from the card and the command only, so a replay with other actionIds, another
  timestamp or any other envelope is dropped as a duplicate. A second button of the same card is a new decision and
  goes to the chat pipeline, which refuses what the record no longer allows (an approval already decided).

Assumptions (the documentation does not settle them):
- The timestamp header is epoch milliseconds, as elsewhere on DingTalk; a 10-digit value is read as seconds.
- The card template (built on the card platform) shows `title` and `markdown`, and button slots n = 1..5 with
  text `${btn<n>_text}` (hidden when empty), each a 回传请求 whose 回传参数 is `{"command": "${btn<n>_command}"}`.
  The command (a button key such as "approve AS000012") is what the click hands to the parser, exactly like a
  WeCom card's EventKey. A click without a command is refused (400).
- `userId` is the DingTalk userId (staffId; the card is created with userIdType 1), which our users carry as
  their dingtalk id.
- We answer `{}`: the decision is made after the answer (the click goes through the inbox like every message),
  and the result reaches the person as a robot message. The card itself is not updated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bot.dingtalk_protocol import PLATFORM, SIGN_WINDOW_MS, CallbackRejected, parse_body
from bot.keys import DB, INBOUND_QUEUE, SETTINGS
from config.settings import DingtalkSettings
from domain.chat import InboundMessage
from domain.clock import utcnow
from domain.limits import DINGTALK_CARD_ID
from integrations.dingtalk.issued_cards import IssuedCard, issued_card
from integrations.dingtalk.render import InteractiveCards
from integrations.dingtalk.replay import CARD, Use, claim_signature

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

CALLBACK_PATH = "/dingtalk/card/callback"
TIMESTAMP_HEADER = "x-ddpaas-signature-timestamp"
SIGNATURE_HEADER = "x-ddpaas-signature"
ACTION_CALLBACK = "actionCallback"
MAX_COMMAND_CHARS = 200

_TIMESTAMP = re.compile(r"[0-9]{1,16}")


def interactive_cards(settings: DingtalkSettings) -> InteractiveCards | None:
    """The interactive-card configuration, or None when any part is missing (cards stay actionCards)."""
    if not (settings.app_key and settings.app_secret and settings.card_template_id
            and settings.card_callback_route_key and settings.card_callback_secret):
        return None
    return InteractiveCards(settings.card_template_id, settings.card_callback_route_key)


def signature(api_secret: str, timestamp: str) -> str:
    digest = hmac.new(api_secret.encode(), timestamp.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_signature(api_secret: str, timestamp_header: str | None, signature_header: str | None,
                     now_ms: int, window_ms: int = SIGN_WINDOW_MS) -> None:
    """Raise CallbackRejected unless the headers carry a fresh timestamp signed with the registered apiSecret."""
    if not timestamp_header or not signature_header:
        raise CallbackRejected("missing signature headers")
    if not _TIMESTAMP.fullmatch(timestamp_header):
        raise CallbackRejected("timestamp is not a number")
    stamp_ms = int(timestamp_header) * (1000 if len(timestamp_header) <= 10 else 1)
    if abs(now_ms - stamp_ms) > window_ms:
        raise CallbackRejected("timestamp outside the replay window", status=403)
    if not hmac.compare_digest(signature(api_secret, timestamp_header).encode(), signature_header.encode()):
        raise CallbackRejected("bad signature", status=403)


def to_inbound(payload: Mapping[str, Any]) -> InboundMessage:
    """A click as a platform-neutral card click; CallbackRejected for anything we cannot act on."""
    kind = payload.get("type", ACTION_CALLBACK)
    if kind != ACTION_CALLBACK:
        raise CallbackRejected(f"unsupported callback type {str(kind)[:40]!r}")
    out_track_id, user_id = _text(payload, "outTrackId"), _text(payload, "userId")
    if not out_track_id or not user_id:
        raise CallbackRejected("outTrackId or userId missing")
    if len(out_track_id) > DINGTALK_CARD_ID.max_chars:
        raise CallbackRejected(f"outTrackId longer than {DINGTALK_CARD_ID.max_chars} characters")
    raw = payload.get("content", payload.get("value"))
    content = _json_object(raw) if isinstance(raw, str) else None
    if content is None:
        raise CallbackRejected("content is not a JSON object string")
    private = content.get("cardPrivateData")
    private = private if isinstance(private, dict) else {}
    params = private.get("params", content.get("params"))
    command = params.get("command") if isinstance(params, dict) else None
    if not isinstance(command, str) or not command.strip() or len(command) > MAX_COMMAND_CHARS:
        raise CallbackRejected("the click carries no command")
    command = command.strip()
    return InboundMessage(
        platform=PLATFORM,
        sender=user_id,
        kind="card_click",
        text=command,
        message_id=click_id(out_track_id, command),
        conversation=user_id,
        card_task_id=out_track_id,
        event_key=command,
    )


def check_issued(message: InboundMessage, card: IssuedCard | None) -> None:
    """Refuse a click on a card we did not send, by someone it was not sent to, or with a command not on it."""
    if card is None:
        raise CallbackRejected("no such card was issued", status=403)
    if not hmac.compare_digest(message.sender.encode(), card.recipient.encode()):
        raise CallbackRejected("the card was not sent to this user", status=403)
    if message.text not in card.commands:
        raise CallbackRejected("the command is not on the card's buttons", status=403)


@routes.post(CALLBACK_PATH)
async def card_callback(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS].dingtalk
    try:
        if interactive_cards(settings) is None:
            raise CallbackRejected("DingTalk interactive cards are not configured", status=403)
        signature_header = request.headers.get(SIGNATURE_HEADER)
        verify_signature(settings.card_callback_secret.get_secret_value(), request.headers.get(TIMESTAMP_HEADER), signature_header,
                         int(time.time() * 1000), settings.replay_window_s * 1000)
        body = await request.read()
        message = to_inbound(parse_body(body))
        check_issued(message, await issued_card(request.app[DB], message.card_task_id))
        use = await claim_signature(request.app[DB], CARD, str(signature_header), body, at=utcnow(),
                                    window_s=settings.replay_window_s)
        if use is Use.OTHER_BODY:
            raise CallbackRejected("this timestamp and signature were used by another callback", status=403)
    except CallbackRejected as err:
        log.warning("dingtalk card callback refused (%s) from %s: %s", err.status, request.remote, err.reason)
        return web.json_response({"error": err.reason}, status=err.status)
    await request.app[INBOUND_QUEUE].accept(message)
    return web.json_response({})


def click_id(out_track_id: str, command: str) -> str:
    """The inbox id of a click: the same card and button always give the same id, whatever else the request
    carries (actionIds, timestamp, corpId), so a click acts once. The card binds the person already."""
    return "card:" + hashlib.sha256(f"{out_track_id}\n{command}".encode()).hexdigest()[:48]


def _json_object(raw: str) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _text(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    return value if isinstance(value, str) else ""
