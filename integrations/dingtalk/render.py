"""Turn handler replies and cards into DingTalk robot messages: sessionWebhook bodies and batchSend params.

A card becomes an actionCard whose buttons are `dtmd://dingtalkclient/sendMessage?content=...` links: a tap
sends the command to the robot as if typed, so the same chat command handles it.

With interactive cards configured (`InteractiveCards`), a card with buttons becomes instead the body of
POST /v1.0/card/instances/createAndDeliver (`render_interactive`), delivered into the robot's single chat with
the person; its buttons' 回传请求 come back to bot/dingtalk_cards.py. The template contract is described there.

Every text and markdown body is cut to DingTalk's limit (DINGTALK_TEXT_BYTES) on a character boundary, so a
long answer arrives shortened instead of being refused.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from domain.chat import Button, Card, Reply
from domain.limits import DINGTALK_CARD_ID, DINGTALK_TEXT_BYTES, cut_to_bytes
from integrations.delivery.limiter import command_text, plain

MAX_CARD_BUTTONS = 5  # sampleActionCard .. sampleActionCard5; further buttons become links in the text
HIGHLIGHT_COLOR = "#FF0000"
TITLE_MAX_CHARS = 30
SEND_MESSAGE_URL = "dtmd://dingtalkclient/sendMessage?content="

# WeCom markdown colours that handlers use, as DingTalk markdown colours.
_WECOM_COLORS = {"warning": HIGHLIGHT_COLOR, "info": "#008000", "comment": "#888888"}
_FONT_COLOR = re.compile(r"""<font\s+color=["']?(\w+)["']?\s*>""")

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class InteractiveCards:
    """The published card template and the callbackRouteKey its clicks are sent to (HTTP callback mode)."""

    template_id: str
    callback_route_key: str



def out_track_id(task_id: str, outbox_row_id: int) -> str:
    """The outTrackId of the interactive card sent by outbox row `outbox_row_id`: "<task id>.<row id>".

    The row id makes it unique and lets a click find the row (and so the card, its recipient and buttons) again;
    a task id that would make it longer than DINGTALK_CARD_ID allows goes in hashed.
    """
    readable = f"{task_id}.{outbox_row_id}"
    if len(readable) <= DINGTALK_CARD_ID.max_chars:
        return readable
    return f"{hashlib.sha256(task_id.encode()).hexdigest()[:32]}.{outbox_row_id}"


def outbox_row_of(card_id: str) -> int | None:
    """The outbox row id an outTrackId of ours ends with; None when it cannot be one of ours."""
    _, dot, tail = card_id.rpartition(".")
    return int(tail) if dot and tail.isascii() and tail.isdigit() and len(tail) <= 18 else None


def send_command_url(command: str) -> str:
    """The link that makes DingTalk send `command` to the robot as the person's own message."""
    return SEND_MESSAGE_URL + quote(command, safe="")


def render_webhook(item: Reply | Card) -> JsonObject:
    """A sessionWebhook body (the custom-robot message format)."""
    if isinstance(item, Reply):
        if item.markdown:
            return {"msgtype": "markdown", "markdown": {"title": _title(item.text), "text": _markdown(item.text)}}
        return {"msgtype": "text", "text": {"content": _cut(item.text)}}
    text, buttons = _card_text(item), _buttons(item)
    if not buttons:
        return {"msgtype": "markdown", "markdown": {"title": item.title, "text": text}}
    action_card: JsonObject = {"title": item.title, "text": text, "btnOrientation": "0"}
    if len(buttons) == 1:
        action_card.update(singleTitle=buttons[0].text, singleURL=_url(buttons[0]))
    else:
        action_card["btns"] = [{"title": b.text, "actionURL": _url(b)} for b in buttons]
    return {"msgtype": "actionCard", "actionCard": action_card}


def render_batch(item: Reply | Card) -> tuple[str, JsonObject]:
    """(msgKey, msgParam) for robot/oToMessages/batchSend."""
    if isinstance(item, Reply):
        if item.markdown:
            return "sampleMarkdown", {"title": _title(item.text), "text": _markdown(item.text)}
        return "sampleText", {"content": _cut(item.text)}
    text, buttons = _card_text(item), _buttons(item)
    if not buttons:
        return "sampleMarkdown", {"title": item.title, "text": text}
    if len(buttons) == 1:
        return "sampleActionCard", {
            "title": item.title, "text": text, "singleTitle": buttons[0].text, "singleURL": _url(buttons[0]),
        }
    param: JsonObject = {"title": item.title, "text": text}
    for n, button in enumerate(buttons, start=1):
        param[f"actionTitle{n}"] = button.text
        param[f"actionURL{n}"] = _url(button)
    return f"sampleActionCard{len(buttons)}", param


def _card_text(card: Card) -> str:
    title = f"<font color={HIGHLIGHT_COLOR}>{card.title}</font>" if card.highlight else card.title
    lines = [f"**{title}**"]
    if card.description:
        lines.append(_markdown(card.description))
    lines.extend(f"- {name}：{value}" for name, value in card.fields)
    extra = card.buttons[MAX_CARD_BUTTONS:]
    if extra:
        lines.append(" ".join(f"[{b.text}]({_url(b)})" for b in extra))
    return _cut("\n\n".join(lines))


def _buttons(card: Card) -> tuple[Button, ...]:
    return card.buttons[:MAX_CARD_BUTTONS]


def _url(button: Button) -> str:
    return send_command_url(command_text(button.key))


def _markdown(text: str) -> str:
    return _cut(_FONT_COLOR.sub(lambda m: f"<font color={_WECOM_COLORS.get(m.group(1), m.group(1))}>", text))


def _cut(text: str) -> str:
    return cut_to_bytes(text, DINGTALK_TEXT_BYTES)


def _title(text: str) -> str:
    """The line shown in the conversation list: the message's first words, without markup."""
    first = plain(text.split("\n", 1)[0]).lstrip("#").strip() or "消息"
    return first if len(first) <= TITLE_MAX_CHARS else first[: TITLE_MAX_CHARS - 1] + "…"


def render_interactive(
    card: Card, cards: InteractiveCards, *, robot_code: str, staff_id: str, out_track_id: str
) -> JsonObject:
    """createAndDeliver body: the card into the robot's single chat (IM_ROBOT) with `staff_id`.

    Card data values are all strings (as the API requires). Button slot n (1..5) is `btn{n}_text` and
    `btn{n}_command`; an unused slot has both empty, and the template hides it. The template's button n sends
    `{"command": "${btn{n}_command}"}` as its 回传参数, so a click carries the command it stands for
    (the button key, e.g. "approve AS000012", as a WeCom card click carries it in EventKey).
    """
    params: dict[str, str] = {
        "title": card.title,
        "markdown": _card_text(card),
        "highlight": "true" if card.highlight else "false",
    }
    buttons = _buttons(card)
    for n in range(1, MAX_CARD_BUTTONS + 1):
        button = buttons[n - 1] if n <= len(buttons) else None
        params[f"btn{n}_text"] = button.text if button else ""
        params[f"btn{n}_command"] = button.key if button else ""
    return {
        "cardTemplateId": cards.template_id,
        "outTrackId": out_track_id,
        "callbackType": "HTTP",
        "callbackRouteKey": cards.callback_route_key,
        "cardData": {"cardParamMap": params},
        "openSpaceId": f"dtv1.card//IM_ROBOT.{staff_id}",
        "imRobotOpenSpaceModel": {"supportForward": False, "lastMessageI18n": {"ZH_CN": _title(card.title)}},
        "imRobotOpenDeliverModel": {"spaceType": "IM_ROBOT", "robotCode": robot_code},
        "userIdType": 1,
    }
