from __future__ import annotations

import pytest

from domain.chat import Button, Card, Reply
from integrations.wecom.render import render_card_update, render_message

AGENT_ID = 1000002

REFUND_CARD = Card(
    title="退款审批 AS000012",
    description="客户申请退款 ¥680.00，原因：发错货",
    task_id="refund-AS000012",
    buttons=(
        Button(key="approve AS000012", text="同意"),
        Button(key="reject AS000012", text="拒绝", style=2),
    ),
    fields=(("订单", "SO20240001"), ("门店", "S07")),
)


def test_plain_reply_renders_as_text_with_duplicate_check() -> None:
    assert render_message("lisi", AGENT_ID, Reply("订单 SO20240001：已发货")) == {
        "touser": "lisi",
        "agentid": AGENT_ID,
        "msgtype": "text",
        "text": {"content": "订单 SO20240001：已发货"},
        "enable_duplicate_check": 1,
        "duplicate_check_interval": 180,
    }


def test_markdown_reply_keeps_the_callers_highlight_markup() -> None:
    content = '**异常** <font color="warning">SO20240001 地址冲突</font>'
    payload = render_message("lisi", AGENT_ID, Reply(content, markdown=True))
    assert payload["msgtype"] == "markdown"
    assert payload["markdown"] == {"content": content}
    assert (payload["enable_duplicate_check"], payload["duplicate_check_interval"]) == (1, 180)


def test_card_renders_as_a_button_interaction_template_card() -> None:
    payload = render_message("zhangmin", AGENT_ID, REFUND_CARD)
    assert payload["msgtype"] == "template_card"
    assert (payload["touser"], payload["agentid"], payload["enable_duplicate_check"]) == (
        "zhangmin",
        AGENT_ID,
        1,
    )
    assert payload["template_card"] == {
        "card_type": "button_interaction",
        "task_id": "refund-AS000012",
        "main_title": {"title": "退款审批 AS000012"},
        "sub_title_text": "客户申请退款 ¥680.00，原因：发错货",
        "horizontal_content_list": [
            {"keyname": "订单", "value": "SO20240001"},
            {"keyname": "门店", "value": "S07"},
        ],
        "button_list": [
            {"type": 0, "text": "同意", "style": 1, "key": "approve AS000012"},
            {"type": 0, "text": "拒绝", "style": 2, "key": "reject AS000012"},
        ],
    }


def test_highlighted_card_carries_a_red_source_label() -> None:
    card = Card(title="t", description="", task_id="t1", buttons=(Button("help", "帮助"),), highlight=True)
    template_card = render_message("lisi", AGENT_ID, card)["template_card"]
    assert template_card["source"]["desc_color"] == 2
    assert "sub_title_text" not in template_card
    assert "horizontal_content_list" not in template_card


def test_card_without_buttons_falls_back_to_markdown() -> None:
    card = Card(
        title="今日概况", description="订单 812，异常 3", task_id="summary-1", fields=(("已发货", "640"),)
    )
    payload = render_message("wanggang", AGENT_ID, card)
    assert payload["msgtype"] == "markdown"
    assert payload["markdown"]["content"] == "**今日概况**\n订单 812，异常 3\n> 已发货：640"


@pytest.mark.parametrize("task_id", ["", "refund AS1", "退款1", "x" * 129])
def test_card_with_a_task_id_wecom_would_refuse_is_rejected_before_sending(task_id: str) -> None:
    card = Card(title="t", description="d", task_id=task_id, buttons=(Button("help", "帮助"),))
    with pytest.raises(ValueError, match="task_id"):
        render_message("lisi", AGENT_ID, card)


def test_card_with_more_than_six_buttons_is_rejected() -> None:
    buttons = tuple(Button(f"k{i}", f"b{i}") for i in range(7))
    with pytest.raises(ValueError, match="buttons"):
        render_message("lisi", AGENT_ID, Card(title="t", description="d", task_id="t1", buttons=buttons))


def test_card_update_uses_the_documented_button_replace_name_form() -> None:
    assert render_card_update(["zhangmin", "lisi"], AGENT_ID, "rc-1", "已同意 · 李敏 10:42") == {
        "userids": ["zhangmin", "lisi"],
        "agentid": AGENT_ID,
        "response_code": "rc-1",
        "button": {"replace_name": "已同意 · 李敏 10:42"},
    }
