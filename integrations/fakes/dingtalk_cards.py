"""The interactive cards of the DingTalk fake: POST /v1.0/card/instances/createAndDeliver (a card into the
robot's single chat, recorded as an "interactiveCard") and `card_click`, the signed HTTP-mode callback of a
click on a card's button. FakeDingTalk (integrations/fakes/dingtalk.py) takes them in as DingTalkCards.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable

from aiohttp import web

from integrations.fakes.dingtalk_received import JsonObject, Received, refusal
from integrations.fakes.server import json_body

CARD_CREATE_PATH = "/v1.0/card/instances/createAndDeliver"
CARD_SIGNATURE_TIMESTAMP = "x-ddpaas-signature-timestamp"
CARD_SIGNATURE = "x-ddpaas-signature"
CARD_BUTTON_SLOTS = 5

_CARD_SPACE = "dtv1.card//IM_ROBOT."


class DingTalkCards:
    """FakeDingTalk's card routes and test controls; FakeDingTalk sets these attributes and `_send_stamp`."""

    app_key: str
    card_api_secret: str  # the apiSecret registered with the card callbackRouteKey
    cards: dict[str, JsonObject]  # outTrackId -> the createAndDeliver body that created it
    received: list[Received]
    requests: list[tuple[str, JsonObject]]
    _clock: Callable[[], float]
    _tokens: dict[str, float]

    def _send_stamp(self) -> int:
        raise NotImplementedError

    def card_signature(self, timestamp_ms: int, api_secret: str | None = None) -> str:
        key = (self.card_api_secret if api_secret is None else api_secret).encode()
        return base64.b64encode(hmac.new(key, str(timestamp_ms).encode(), hashlib.sha256).digest()).decode()

    def card_click(
        self,
        user_id: str,
        out_track_id: str,
        button_text: str,
        *,
        timestamp_ms: int | None = None,
        api_secret: str | None = None,
    ) -> tuple[dict[str, str], JsonObject]:
        """(headers, JSON body) of the HTTP-mode callback DingTalk sends when `user_id` taps the button labelled
        `button_text` on card `out_track_id`: button slot n answers with actionIds ["btn<n>"] and the 回传参数
        {"command": <btn<n>_command>} the template binds. Signed with the card apiSecret unless told otherwise."""
        params = self.cards[out_track_id]["cardData"]["cardParamMap"]
        slot = next(n for n in range(1, CARD_BUTTON_SLOTS + 1) if params.get(f"btn{n}_text") == button_text)
        content = {"cardPrivateData": {"actionIds": [f"btn{slot}"], "params": {"command": params[f"btn{slot}_command"]}}}
        body: JsonObject = {
            "type": "actionCallback", "outTrackId": out_track_id, "corpId": "dingfakecorp", "userId": user_id,
            "content": json.dumps(content, ensure_ascii=False),
        }
        stamp = timestamp_ms if timestamp_ms is not None else self._send_stamp()
        return {CARD_SIGNATURE_TIMESTAMP: str(stamp), CARD_SIGNATURE: self.card_signature(stamp, api_secret)}, body

    def cards_to(self, staff_id: str) -> list[Received]:
        return [m for m in self.received if m.via == "card" and staff_id in m.to]

    async def _create_and_deliver(self, request: web.Request) -> web.Response:
        expires_at = self._tokens.get(request.headers.get("x-acs-dingtalk-access-token", ""))
        if expires_at is None or expires_at <= self._clock():
            return refusal(400, "InvalidAuthentication", "不合法的access_token")
        body = await json_body(request)
        code = _card_refusal(body)
        if body is None or code:
            return refusal(400, code, code)
        if body["outTrackId"] in self.cards:
            return refusal(400, "param.cardAlreadyExist", "param.cardAlreadyExist")
        if body["imRobotOpenDeliverModel"].get("robotCode") != self.app_key:
            return refusal(400, "param.openDeliverModelError", "robotCode 不合法")
        staff_id = body["openSpaceId"][len(_CARD_SPACE):]
        self.cards[body["outTrackId"]] = body
        self.requests.append((CARD_CREATE_PATH, body))
        params = body["cardData"]["cardParamMap"]
        buttons = [(params[f"btn{n}_text"], params.get(f"btn{n}_command", ""))
                   for n in range(1, CARD_BUTTON_SLOTS + 1) if params.get(f"btn{n}_text")]
        self.received.append(Received("card", (staff_id,), "", "interactiveCard", {
            "title": params.get("title", ""), "text": params.get("markdown", ""), "buttons": buttons,
            "out_track_id": body["outTrackId"],
        }))
        return web.json_response({"success": True, "result": {"outTrackId": body["outTrackId"], "deliverResults": [
            {"spaceType": "IM_ROBOT", "spaceId": staff_id, "success": True, "carrierId": secrets.token_urlsafe(12)},
        ]}})


def _card_refusal(body: JsonObject | None) -> str:
    """The createAndDeliver error code a malformed body gets ("" if acceptable); only IM_ROBOT is faked."""
    if body is None:
        return "param.empty"
    if not isinstance(body.get("outTrackId"), str) or not body["outTrackId"]:
        return "param.outTrackIdEmpty"
    if not isinstance(body.get("cardTemplateId"), str) or not body["cardTemplateId"]:
        return "param.cardTemplateIdEmpty"
    card_data = body.get("cardData")
    params = card_data.get("cardParamMap") if isinstance(card_data, dict) else None
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        return "param.cardPublicDataEmpty"
    space = body.get("openSpaceId")
    if not isinstance(space, str) or not space:
        return "param.openSpaceIdEmpty"
    if not space.upper().startswith(_CARD_SPACE.upper()) or ";" in space:
        return "param.openSpaceIdInvalid"
    deliver = body.get("imRobotOpenDeliverModel")
    if not isinstance(deliver, dict):
        return "param.openDeliverModelEmpty"
    if body.get("callbackType") not in (None, "HTTP", "STREAM"):
        return "param.invalid"
    return ""
