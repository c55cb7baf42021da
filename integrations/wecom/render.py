"""Turn handler replies and cards into WeCom message/send and update_template_card JSON.

Text is cut to WeCom's limits (2,048 bytes for text, 4,096 for markdown) on a character boundary: WeCom
refuses a longer message outright, and the person would get nothing at all.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from domain.chat import Button, Card, Reply
from domain.clock import local
from domain.limits import WECOM_MARKDOWN_BYTES, WECOM_TEXT_BYTES, cut_to_bytes

# Long enough to swallow our own re-send after a crash (the outbox claim lasts 60 s, plus backoff). WeCom
# compares content, not our row id: an answer that would repeat an earlier one therefore names the time of
# its question (answer_stamp; integrations/delivery/answers.py decides), so a person who asks the same thing
# twice sees two answers, while a re-send of one answer is the same message to the byte and stays hidden.
DUPLICATE_CHECK_INTERVAL_S = 180
MAX_CARD_BUTTONS = 6
MAX_CARD_FIELDS = 6
HIGHLIGHT_SOURCE = {"desc": "待处理", "desc_color": 2}  # desc_color 2 = red

_TASK_ID = re.compile(r"[0-9A-Za-z_\-@]{1,128}")  # WeCom: digits, letters and "_-@", at most 128 bytes

JsonObject = dict[str, Any]


def render_message(touser: str, agent_id: int, item: Reply | Card, *, asked_at: datetime | None = None) -> JsonObject:
    """message/send payload; duplicate check on, so a retried send is not shown twice. `asked_at`: the time of
    the question this answers, shown under a text or markdown answer that would otherwise repeat an earlier
    one (a card with buttons is told apart by its task id)."""
    stamp = answer_stamp(asked_at) if asked_at is not None else ""
    if isinstance(item, Reply):
        body = _markdown(_stamped_markdown(item.text, stamp)) if item.markdown else _text(_stamped(item.text, stamp))
    elif item.buttons:
        body = _template_card(item)
    else:  # button_interaction cards need at least one button
        body = _markdown(_stamped_markdown(_card_as_markdown(item), stamp))
    return {
        "touser": touser,
        "agentid": agent_id,
        **body,
        "enable_duplicate_check": 1,
        "duplicate_check_interval": DUPLICATE_CHECK_INTERVAL_S,
    }


def answer_stamp(asked_at: datetime) -> str:
    return f"（回复 {local(asked_at):%H:%M:%S} 的消息）"


def _stamped(text: str, stamp: str) -> str:
    if not stamp:
        return text
    return cut_to_bytes(text, WECOM_TEXT_BYTES - len(stamp.encode()) - 1) + "\n" + stamp


def _stamped_markdown(text: str, stamp: str) -> str:
    if not stamp:
        return text
    tail = f'\n<font color="comment">{stamp}</font>'
    return cut_to_bytes(text, WECOM_MARKDOWN_BYTES - len(tail.encode())) + tail


def render_card_update(
    userids: list[str], agent_id: int, response_code: str, replace_text: str
) -> JsonObject:
    """Turn a clicked card's buttons into one non-clickable label such as "已同意 · 李敏 10:42"."""
    return {
        "userids": list(userids),
        "agentid": agent_id,
        "response_code": response_code,
        "button": {"replace_name": replace_text},
    }


def _text(content: str) -> JsonObject:
    return {"msgtype": "text", "text": {"content": cut_to_bytes(content, WECOM_TEXT_BYTES)}}


def _markdown(content: str) -> JsonObject:
    return {"msgtype": "markdown", "markdown": {"content": cut_to_bytes(content, WECOM_MARKDOWN_BYTES)}}


def _template_card(card: Card) -> JsonObject:
    _check_card(card)
    template_card: JsonObject = {
        "card_type": "button_interaction",
        "task_id": card.task_id,
        "main_title": {"title": card.title},
    }
    if card.highlight:
        template_card["source"] = dict(HIGHLIGHT_SOURCE)
    if card.description:
        template_card["sub_title_text"] = card.description
    if card.fields:
        template_card["horizontal_content_list"] = [
            {"keyname": name, "value": value} for name, value in card.fields
        ]
    template_card["button_list"] = [_button(button) for button in card.buttons]
    return {"msgtype": "template_card", "template_card": template_card}


def _button(button: Button) -> JsonObject:
    return {"type": 0, "text": button.text, "style": button.style, "key": button.key}


def _check_card(card: Card) -> None:
    if not _TASK_ID.fullmatch(card.task_id):
        raise ValueError(f"card task_id {card.task_id!r} is not 1-128 of [0-9A-Za-z_-@]")
    if len(card.buttons) > MAX_CARD_BUTTONS:
        raise ValueError(f"a WeCom card holds at most {MAX_CARD_BUTTONS} buttons, got {len(card.buttons)}")
    if len(card.fields) > MAX_CARD_FIELDS:
        raise ValueError(f"a WeCom card holds at most {MAX_CARD_FIELDS} fields, got {len(card.fields)}")


def _card_as_markdown(card: Card) -> str:
    title = f'<font color="warning">{card.title}</font>' if card.highlight else card.title
    lines = [f"**{title}**"]
    if card.description:
        lines.append(card.description)
    lines.extend(f"> {name}：{value}" for name, value in card.fields)
    return "\n".join(lines)
