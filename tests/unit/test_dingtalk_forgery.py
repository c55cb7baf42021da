"""What a forged DingTalk body cannot do, checked without I/O: name a reply URL off DingTalk's hosts, another robot,
an over-long card id, or make one click count twice by varying its envelope."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.dingtalk_cards import click_id
from bot.dingtalk_cards import to_inbound as click_to_inbound
from bot.dingtalk_protocol import CallbackRejected, check_robot, to_inbound
from domain.limits import DINGTALK_CARD_ID
from integrations.dingtalk.client import DINGTALK_WEBHOOK_HOSTS, webhook_allowed
from integrations.dingtalk.render import out_track_id, outbox_row_of

NOW_MS = 1_760_000_000_000
SESSION = "/robot/sendBySession?session=abc"


@pytest.mark.parametrize("url", [
    f"https://oapi.dingtalk.com{SESSION}", f"https://api.dingtalk.com{SESSION}", f"https://OAPI.DingTalk.com{SESSION}",
    f"https://oapi.dingtalk.com:443{SESSION}",
])
def test_dingtalks_own_session_webhooks_are_allowed(url: str) -> None:
    assert webhook_allowed(url, DINGTALK_WEBHOOK_HOSTS)


@pytest.mark.parametrize("url", [
    f"http://oapi.dingtalk.com{SESSION}",  # not https
    f"https://oapi.dingtalk.com.evil.example{SESSION}",
    f"https://evil.example/?next=oapi.dingtalk.com{SESSION}",
    f"https://oapi.dingtalk.com@evil.example{SESSION}",
    f"https://user:pw@oapi.dingtalk.com{SESSION}",
    f"https://oapi.dingtalk.com:8443{SESSION}",
    f"https://127.0.0.1{SESSION}", f"http://localhost:8080{SESSION}",  # loopback only when listed
    f"ftp://oapi.dingtalk.com{SESSION}", f"//oapi.dingtalk.com{SESSION}", "https://[::1", "", "oapi.dingtalk.com",
    f"https://oapi.dingtalk.com:99999{SESSION}", f"https://xn--oapi-dingtalk.com{SESSION}",
])
def test_anything_else_is_refused(url: str) -> None:
    assert not webhook_allowed(url, DINGTALK_WEBHOOK_HOSTS)


def test_a_listed_loopback_host_may_use_http_and_any_port() -> None:
    assert webhook_allowed(f"http://127.0.0.1:41234{SESSION}", ["127.0.0.1"])
    assert not webhook_allowed(f"http://localhost:41234{SESSION}", ["127.0.0.1"])
    assert not webhook_allowed(f"http://oapi.dingtalk.com:41234{SESSION}", ["127.0.0.1", "oapi.dingtalk.com"])


@given(st.text(max_size=200))
def test_an_allowed_url_is_always_https_on_a_listed_host(url: str) -> None:
    if webhook_allowed(url, DINGTALK_WEBHOOK_HOSTS):
        parts = urlsplit(url)
        assert parts.scheme == "https" and parts.hostname in DINGTALK_WEBHOOK_HOSTS and parts.username is None


@given(st.sampled_from(["https://", "http://", "//", ""]), st.text(max_size=60), st.sampled_from(["", ":443", ":80"]))
def test_a_host_not_listed_is_never_allowed(scheme: str, host: str, port: str) -> None:
    url = f"{scheme}{host}{port}{SESSION}"
    if webhook_allowed(url, DINGTALK_WEBHOOK_HOSTS):
        assert urlsplit(url).hostname in DINGTALK_WEBHOOK_HOSTS


def robot(**changes: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "conversationId": "cidABC==", "conversationType": "1", "msgId": "msgXYZ", "msgtype": "text",
        "text": {"content": "帮助"}, "senderStaffId": "manager4321", "robotCode": "dingrobot",
        "sessionWebhook": f"https://oapi.dingtalk.com{SESSION}", "sessionWebhookExpiredTime": NOW_MS + 5_400_000,
    }
    payload.update(changes)
    return payload


def test_a_foreign_session_webhook_leaves_no_reply_hint() -> None:
    msg = to_inbound(robot(sessionWebhook=f"https://evil.example{SESSION}"))
    assert msg is not None and msg.reply_hint == ""  # the answer is pushed to senderStaffId instead
    msg = to_inbound(robot())
    assert msg is not None and msg.reply_hint.startswith("https://oapi.dingtalk.com/")


@pytest.mark.parametrize("code", ["dingother", "", None, 42, "DINGROBOT", "dingrobot "])
def test_a_body_for_another_robot_is_refused(code: object) -> None:
    with pytest.raises(CallbackRejected) as refused:
        check_robot(robot(robotCode=code), "dingrobot")
    assert refused.value.status == 403
    check_robot(robot(), "dingrobot")


def test_no_robot_code_configured_refuses_everything() -> None:
    with pytest.raises(CallbackRejected):
        check_robot(robot(robotCode=""), "")


def click(out: str, command: str = "approve AS000012", actions: object = ("btn1",)) -> dict[str, object]:
    content = {"cardPrivateData": {"actionIds": list(actions) if isinstance(actions, tuple) else actions,
                                   "params": {"command": command}}}
    return {"type": "actionCallback", "outTrackId": out, "userId": "staff1", "content": json.dumps(content)}


@pytest.mark.parametrize("length", [112, 128, 129, 5_000])
def test_an_over_long_card_id_is_a_400(length: int) -> None:
    with pytest.raises(CallbackRejected) as refused:
        click_to_inbound(click("x" * length))
    assert refused.value.status == 400


def test_a_card_id_of_111_characters_is_read() -> None:
    assert click_to_inbound(click("x" * 111)).card_task_id == "x" * 111


@given(st.lists(st.text(max_size=10), max_size=3), st.text(max_size=10))
def test_a_clicks_id_depends_on_card_and_command_only(actions: list[str], corp: str) -> None:
    msg = click_to_inbound({**click("approve-AS000012.7", actions=actions), "corpId": corp})
    assert msg.message_id == click_id("approve-AS000012.7", "approve AS000012")
    assert msg.message_id != click_id("approve-AS000012.7", "reject AS000012")
    assert msg.message_id != click_id("approve-AS000012.8", "approve AS000012")


@given(st.text(min_size=1, max_size=300), st.integers(min_value=1, max_value=10**15))
@example("scan-OB00000012-3-" + "m" * 110, 10**15)  # WeCom-style task ids run to 128 characters
def test_card_ids_we_issue_fit_and_name_their_outbox_row(task_id: str, row_id: int) -> None:
    card_id = out_track_id(task_id, row_id)
    assert len(card_id) <= DINGTALK_CARD_ID.max_chars
    assert outbox_row_of(card_id) == row_id


@pytest.mark.parametrize("card_id", ["", "approve", "approve.", "approve.x1", ".١٢", "a.-1", "a.1 ", "a." + "9" * 19])
def test_what_cannot_name_an_outbox_row(card_id: str) -> None:
    assert outbox_row_of(card_id) is None
