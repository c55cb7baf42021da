"""What the DingTalk fake's routes share: the record of a message it accepted and the shape of its refusals."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Received:
    """One message the fake accepted, normalised: what reached whom, by which way."""

    via: str  # "batch" (robot batchSend) | "session" (a sessionWebhook reply) | "card" (createAndDeliver)
    to: tuple[str, ...]  # staff ids: batchSend's userIds, or the sender of the message a session answers
    conversation: str  # the session's conversation id; "" for batchSend
    kind: str  # "text" | "markdown" | "actionCard" | "interactiveCard"
    content: JsonObject  # text: content; markdown: title, text; actionCard: title, text, buttons [(title, url)];
    # interactiveCard: title, text, buttons [(title, command)], out_track_id


def visible_text(message: Received) -> str:
    """What a person sees of one message."""
    c = message.content
    if message.kind == "text":
        return str(c.get("content", ""))
    parts = [str(c.get("text", ""))]
    parts += [f"[{title}]" for title, _ in c.get("buttons", [])]
    return " ".join(p for p in parts if p)


def refusal(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message, "requestid": secrets.token_hex(8)}, status=status)
