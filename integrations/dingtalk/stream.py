"""DingTalk stream mode: robot messages pushed over a websocket from DingTalk's gateway, for companies with
no public callback URL. Needs the optional `dingtalk-stream` package.

The SDK's client opens the connection with a blocking `requests` call and reconnects on its own; each robot
message arrives as the same JSON object an HTTP callback carries, and is acknowledged once `on_message`
has stored it (so a message is acknowledged only after it is in the inbox).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import dingtalk_stream

log = logging.getLogger(__name__)

OnMessage = Callable[[dict[str, Any]], Awaitable[None]]
TOPIC = dingtalk_stream.ChatbotMessage.TOPIC


class RobotMessages(dingtalk_stream.ChatbotHandler):  # type: ignore[misc]
    def __init__(self, on_message: OnMessage) -> None:
        super().__init__()
        self._on_message = on_message

    async def process(self, callback: dingtalk_stream.CallbackMessage) -> tuple[int, str]:
        payload = callback.data
        if not isinstance(payload, dict):
            return dingtalk_stream.AckMessage.STATUS_BAD_REQUEST, "not a JSON object"
        try:
            await self._on_message(payload)
        except Exception:
            log.exception("dingtalk stream message could not be stored; acknowledged as a failure")
            return dingtalk_stream.AckMessage.STATUS_SYSTEM_EXCEPTION, "not stored"
        return dingtalk_stream.AckMessage.STATUS_OK, "OK"


def stream_client(app_key: str, app_secret: str, on_message: OnMessage) -> dingtalk_stream.DingTalkStreamClient:
    client = dingtalk_stream.DingTalkStreamClient(dingtalk_stream.Credential(app_key, app_secret))
    client.register_callback_handler(TOPIC, RobotMessages(on_message))
    return client
