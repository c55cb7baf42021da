"""DingTalk robot callback protocol: the timestamp + sign check, safe JSON, and normalisation.

Pure functions only; the aiohttp route calls them and turns CallbackRejected into an HTTP status.
DingTalk signs an HTTP-mode robot callback with headers `timestamp` (ms) and
`sign` = base64(HMAC-SHA256(key=app_secret, msg=f"{timestamp}\\n{app_secret}")) (open.dingtalk.com 机器人接收消息,
"HTTP 模式"; the dingtalk-stream SDK's ChatbotMessage names the same body fields). The body is not signed, so:
- the window is kept short (dingtalk.replay_window_s, default 5 minutes; DingTalk's own tolerance is an hour),
- a timestamp+sign pair is accepted with one body only (integrations/dingtalk/replay.py), and the inbox drops a
  replayed msgId;
- the body must name our robot (`robotCode` = the app key: DingTalk puts it in every enterprise-robot
  callback), and its `sessionWebhook` is used only on DingTalk's hosts (dingtalk.session_webhook_hosts);
- the sender is whoever `senderStaffId` names, looked up in our users by the chat pipeline (a stranger is
  refused politely, and the answer goes to that staff id, never to a URL the body chose).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Collection, Mapping
from typing import Any

from domain.chat import InboundMessage
from integrations.dingtalk.client import DINGTALK_WEBHOOK_HOSTS, SessionWebhook, webhook_allowed

log = logging.getLogger(__name__)

PLATFORM = "dingtalk"
SIGN_WINDOW_MS = 3_600_000  # DingTalk: a timestamp more than one hour off is refused
SINGLE_CHAT, GROUP_CHAT = "1", "2"

_LEADING_MENTIONS = re.compile(r"^\s*(?:@\S*\s+)*")
_TIMESTAMP = re.compile(r"[0-9]{1,16}")


class CallbackRejected(Exception):
    """A callback we refuse to process; `status` is the HTTP status to answer with."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def sign(app_secret: str, timestamp: str) -> str:
    digest = hmac.new(app_secret.encode(), f"{timestamp}\n{app_secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_sign(app_secret: str, timestamp_header: str | None, sign_header: str | None, now_ms: int,
                window_ms: int = SIGN_WINDOW_MS) -> None:
    """Raise CallbackRejected unless the headers carry a fresh timestamp signed with our app secret."""
    if not app_secret:
        raise CallbackRejected("DingTalk is not configured", status=403)
    if not timestamp_header or not sign_header:
        raise CallbackRejected("missing timestamp or sign header")
    if not _TIMESTAMP.fullmatch(timestamp_header):
        raise CallbackRejected("timestamp is not a number")
    if abs(now_ms - int(timestamp_header)) > window_ms:
        raise CallbackRejected("timestamp outside the replay window", status=403)
    expected = sign(app_secret, timestamp_header)
    if not hmac.compare_digest(expected.encode(), sign_header.encode()):
        raise CallbackRejected("bad sign", status=403)


def parse_body(body: bytes) -> dict[str, Any]:
    """The callback's JSON object; anything else (not JSON, not an object, nested absurdly) is refused."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise CallbackRejected(f"unacceptable JSON: {type(exc).__name__}") from exc
    if not isinstance(payload, dict):
        raise CallbackRejected("callback body is not a JSON object")
    return payload


def check_robot(payload: Mapping[str, Any], robot_code: str) -> None:
    """Refuse a body that does not name our robot: a callback for another robot is not for us to act on."""
    named = _text(payload, "robotCode")
    if not robot_code or not hmac.compare_digest(named.encode(), robot_code.encode()):
        raise CallbackRejected("the message is not for this robot", status=403)


def to_inbound(
    payload: Mapping[str, Any], webhook_hosts: Collection[str] = DINGTALK_WEBHOOK_HOSTS
) -> InboundMessage | None:
    """A robot message as a platform-neutral message; None for what the bot does not act on.

    `conversationType` "1" is a single chat, "2" a group (where DingTalk delivers only messages that
    @-mention the robot). Either way the answer goes back through `sessionWebhook` while it is valid and on
    one of `webhook_hosts`; otherwise (no hint) it is pushed to the sender's staff id through batchSend.
    """
    sender, message_id = _text(payload, "senderStaffId"), _text(payload, "msgId")
    if not sender or not message_id or payload.get("msgtype") != "text":
        return None
    if _text(payload, "conversationType") not in (SINGLE_CHAT, GROUP_CHAT):
        return None
    body = payload.get("text")
    content = body.get("content") if isinstance(body, dict) else None
    if not isinstance(content, str):
        return None
    return InboundMessage(
        platform=PLATFORM,
        sender=sender,
        kind="text",
        text=_LEADING_MENTIONS.sub("", content).strip(),
        message_id=message_id,
        conversation=_text(payload, "conversationId") or sender,
        reply_hint=_reply_hint(payload, webhook_hosts),
    )


def _reply_hint(payload: Mapping[str, Any], webhook_hosts: Collection[str]) -> str:
    url = _text(payload, "sessionWebhook")
    expires = payload.get("sessionWebhookExpiredTime")
    if not url or not isinstance(expires, int | str) or not str(expires).isdigit() or len(str(expires)) > 16:
        return ""
    if not webhook_allowed(url, webhook_hosts):
        log.warning("dingtalk message %r names a session webhook off the allowed hosts; answering by batchSend",
                    _text(payload, "msgId")[:64])
        return ""
    return SessionWebhook(url, int(expires)).hint()


def _text(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    return value if isinstance(value, str) else ""
