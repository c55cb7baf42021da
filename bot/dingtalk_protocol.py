"""DingTalk robot callback protocol: the timestamp + sign check, safe JSON, and normalisation.

Pure functions only; the aiohttp route calls them and turns CallbackRejected into an HTTP status.
DingTalk signs an HTTP-mode robot callback with headers `timestamp` (ms) and
`sign` = base64(HMAC-SHA256(key=app_secret, msg=f"{timestamp}\\n{app_secret}")); the body is not signed,
so the timestamp window is what limits a replay (the inbox drops a replayed msgId besides).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any

from domain.chat import InboundMessage
from integrations.dingtalk.client import SessionWebhook

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


def verify_sign(app_secret: str, timestamp_header: str | None, sign_header: str | None, now_ms: int) -> None:
    """Raise CallbackRejected unless the headers carry a fresh timestamp signed with our app secret."""
    if not app_secret:
        raise CallbackRejected("DingTalk is not configured", status=403)
    if not timestamp_header or not sign_header:
        raise CallbackRejected("missing timestamp or sign header")
    if not _TIMESTAMP.fullmatch(timestamp_header):
        raise CallbackRejected("timestamp is not a number")
    if abs(now_ms - int(timestamp_header)) > SIGN_WINDOW_MS:
        raise CallbackRejected("timestamp outside the one-hour window", status=403)
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


def to_inbound(payload: Mapping[str, Any]) -> InboundMessage | None:
    """A robot message as a platform-neutral message; None for what the bot does not act on.

    `conversationType` "1" is a single chat, "2" a group (where DingTalk delivers only messages that
    @-mention the robot). Either way the answer goes back through `sessionWebhook` while it is valid.
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
        reply_hint=_reply_hint(payload),
    )


def _reply_hint(payload: Mapping[str, Any]) -> str:
    url = _text(payload, "sessionWebhook")
    expires = payload.get("sessionWebhookExpiredTime")
    if not url or not isinstance(expires, int | str) or not str(expires).isdigit():
        return ""
    return SessionWebhook(url, int(expires)).hint()


def _text(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    return value if isinstance(value, str) else ""
