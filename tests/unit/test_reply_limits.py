"""Replies are cut to the platform's limit on a character boundary, so a long answer arrives shortened
instead of being refused by WeCom or DingTalk (and the person getting nothing)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.chat import Button, Card, Reply
from domain.limits import DINGTALK_TEXT_BYTES, WECOM_MARKDOWN_BYTES, WECOM_TEXT_BYTES
from integrations.dingtalk.render import render_batch, render_webhook
from integrations.wecom.render import render_message

LONG = "已改地址：" + "上海市浦东新区张杨路500号" * 400  # ~17,000 bytes of UTF-8


def size(text: str) -> int:
    return len(text.encode("utf-8"))


def shortened(sent: str, original: str, limit: int) -> None:
    assert size(sent) <= limit
    assert sent.endswith("…") and original.startswith(sent[:-1])
    assert size(sent) > limit - 4  # cut at the limit, not far short of it


def test_wecom_text_is_cut_to_2048_bytes() -> None:
    shortened(render_message("wh1", 1, Reply(LONG))["text"]["content"], LONG, WECOM_TEXT_BYTES)


def test_wecom_markdown_is_cut_to_4096_bytes() -> None:
    shortened(render_message("wh1", 1, Reply(LONG, markdown=True))["markdown"]["content"], LONG, WECOM_MARKDOWN_BYTES)


def test_a_wecom_card_without_buttons_is_cut_like_markdown() -> None:
    body = render_message("wh1", 1, Card("改地址", LONG, "t1"))["markdown"]["content"]
    assert size(body) <= WECOM_MARKDOWN_BYTES


def test_dingtalk_text_markdown_and_cards_are_cut() -> None:
    shortened(render_webhook(Reply(LONG))["text"]["content"], LONG, DINGTALK_TEXT_BYTES)
    assert size(render_webhook(Reply(LONG, markdown=True))["markdown"]["text"]) <= DINGTALK_TEXT_BYTES
    shortened(render_batch(Reply(LONG))[1]["content"], LONG, DINGTALK_TEXT_BYTES)
    assert size(render_batch(Reply(LONG, markdown=True))[1]["text"]) <= DINGTALK_TEXT_BYTES
    card = Card("改地址", LONG, "t1", buttons=(Button("status OB1", "查询"),))
    assert size(render_webhook(card)["actionCard"]["text"]) <= DINGTALK_TEXT_BYTES
    assert size(render_batch(card)[1]["text"]) <= DINGTALK_TEXT_BYTES


def test_a_short_reply_is_sent_as_it_is() -> None:
    assert render_message("wh1", 1, Reply("已开始拣货。"))["text"]["content"] == "已开始拣货。"
    assert render_webhook(Reply("已开始拣货。"))["text"]["content"] == "已开始拣货。"


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=6000))
def test_any_reply_fits_and_is_a_prefix_of_what_was_said(text: str) -> None:
    for sent, limit in (
        (render_message("u", 1, Reply(text))["text"]["content"], WECOM_TEXT_BYTES),
        (render_message("u", 1, Reply(text, markdown=True))["markdown"]["content"], WECOM_MARKDOWN_BYTES),
        (render_webhook(Reply(text))["text"]["content"], DINGTALK_TEXT_BYTES),
    ):
        assert size(sent) <= limit
        assert sent == text or (sent.endswith("…") and text.startswith(sent[:-1]))
