"""Replies and cards as DingTalk robot messages: session-webhook bodies and batchSend msgKey/msgParam."""

from __future__ import annotations

from urllib.parse import unquote

from domain.chat import Button, Card, Reply
from integrations.dingtalk.render import render_batch, render_webhook, send_command_url

CARD = Card("退款待审批", "AS000012 · ¥350.00", "as12",
            (Button("approve AS000012", "同意"), Button("reject AS000012", "拒绝", 2)),
            fields=(("订单", "OB00000012"),), highlight=True)


def test_text_and_markdown() -> None:
    assert render_webhook(Reply("你好")) == {"msgtype": "text", "text": {"content": "你好"}}
    assert render_batch(Reply("你好")) == ("sampleText", {"content": "你好"})
    key, param = render_batch(Reply('<font color="warning">缺货</font> 订单 OB1\n详情', markdown=True))
    assert key == "sampleMarkdown"
    assert param == {"title": "缺货 订单 OB1", "text": "<font color=#FF0000>缺货</font> 订单 OB1\n详情"}


def test_a_button_sends_its_command_back_as_typed() -> None:
    url = send_command_url("同意 AS000012")
    assert url.startswith("dtmd://dingtalkclient/sendMessage?content=")
    assert unquote(url.partition("content=")[2]) == "同意 AS000012"
    assert " " not in url and "&" not in send_command_url("改地址 OB1 上海&北京")


def test_card_as_action_card_with_highlight() -> None:
    body = render_webhook(CARD)
    assert body["msgtype"] == "actionCard"
    card = body["actionCard"]
    assert card["text"].startswith("**<font color=#FF0000>退款待审批</font>**")
    assert "- 订单：OB00000012" in card["text"]
    assert [(b["title"], unquote(b["actionURL"].partition("content=")[2])) for b in card["btns"]] == [
        ("同意", "同意 AS000012"), ("拒绝", "拒绝 AS000012")]


def test_card_as_batch_send_params() -> None:
    key, param = render_batch(CARD)
    assert key == "sampleActionCard2"
    assert (param["actionTitle1"], param["actionTitle2"]) == ("同意", "拒绝")
    one = Card("待办", "", "t1", (Button("tasks", "查看待办"),))
    assert render_batch(one)[0] == "sampleActionCard"
    assert render_batch(one)[1]["singleURL"] == send_command_url("待办")
    assert render_webhook(one)["actionCard"]["singleTitle"] == "查看待办"


def test_a_card_without_buttons_is_markdown_and_extra_buttons_become_links() -> None:
    assert render_batch(Card("概况", "今日 120 单", "s1"))[0] == "sampleMarkdown"
    many = Card("异常", "", "e1", tuple(Button(f"ack E{n}", f"确认{n}") for n in range(7)))
    key, param = render_batch(many)
    assert key == "sampleActionCard5"
    assert "[确认5](" in param["text"] and "[确认6](" in param["text"]
