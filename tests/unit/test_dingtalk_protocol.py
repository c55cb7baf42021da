"""DingTalk callback protocol: the sign check, the timestamp window, safe JSON, and normalisation."""

from __future__ import annotations

import pytest

from bot.dingtalk_protocol import CallbackRejected, parse_body, sign, to_inbound, verify_sign
from integrations.dingtalk.client import SessionWebhook

SECRET = "this-is-the-app-secret"
NOW_MS = 1_760_000_000_000


def test_sign_is_base64_hmac_sha256_of_timestamp_and_secret() -> None:
    # printf '1760000000000\nthis-is-the-app-secret' | openssl dgst -sha256 -hmac this-is-the-app-secret -binary | base64
    expected = "utkf/8FeU1rT5hmv4q1VX6kgzVlSzKl4K0umXnTih84="
    assert sign(SECRET, str(NOW_MS)) == expected
    verify_sign(SECRET, str(NOW_MS), expected, NOW_MS)


@pytest.mark.parametrize("offset_ms", [-3_600_000, 3_600_000, -1, 0])
def test_timestamps_inside_one_hour_pass(offset_ms: int) -> None:
    stamp = str(NOW_MS + offset_ms)
    verify_sign(SECRET, stamp, sign(SECRET, stamp), NOW_MS)


@pytest.mark.parametrize("offset_ms", [-3_600_001, 3_600_001, -86_400_000])
def test_timestamps_outside_one_hour_are_refused_with_403(offset_ms: int) -> None:
    stamp = str(NOW_MS + offset_ms)
    with pytest.raises(CallbackRejected) as refused:
        verify_sign(SECRET, stamp, sign(SECRET, stamp), NOW_MS)
    assert refused.value.status == 403


@pytest.mark.parametrize(
    ("timestamp", "signature", "status"),
    [
        (None, "x", 400),
        ("", "x", 400),
        (str(NOW_MS), None, 400),
        ("17600000000oo", "x", 400),
        ("-1760000000000", "x", 400),
        ("1" * 40, "x", 400),
        (str(NOW_MS), "not-the-sign", 403),
        (str(NOW_MS), sign("another-secret", str(NOW_MS)), 403),
        (str(NOW_MS + 1), sign(SECRET, str(NOW_MS)), 403),
    ],
)
def test_bad_headers_are_refused(timestamp: str | None, signature: str | None, status: int) -> None:
    with pytest.raises(CallbackRejected) as refused:
        verify_sign(SECRET, timestamp, signature, NOW_MS)
    assert refused.value.status == status


def test_an_unconfigured_secret_refuses_everything() -> None:
    with pytest.raises(CallbackRejected) as refused:
        verify_sign("", str(NOW_MS), sign("", str(NOW_MS)), NOW_MS)
    assert refused.value.status == 403


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'"text"', b"42", b"\xff\xfe", b"[" * 5000])
def test_bodies_that_are_not_a_json_object_are_refused(body: bytes) -> None:
    with pytest.raises(CallbackRejected) as refused:
        parse_body(body)
    assert refused.value.status == 400


def robot(**changes: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "conversationId": "cidABC==", "conversationType": "1", "msgId": "msgXYZ", "msgtype": "text",
        "text": {"content": " 帮助 "}, "senderStaffId": "manager4321", "senderNick": "李敏",
        "sessionWebhook": "https://oapi.dingtalk.com/robot/sendBySession?session=abc",
        "sessionWebhookExpiredTime": NOW_MS + 5_400_000,
    }
    payload.update(changes)
    return payload


def test_a_text_message_becomes_an_inbound_message() -> None:
    msg = to_inbound(robot())
    assert msg is not None
    assert (msg.platform, msg.sender, msg.kind, msg.text, msg.message_id, msg.conversation) == (
        "dingtalk", "manager4321", "text", "帮助", "msgXYZ", "cidABC==")
    hint = SessionWebhook.parse(msg.reply_hint)
    assert hint == SessionWebhook("https://oapi.dingtalk.com/robot/sendBySession?session=abc", NOW_MS + 5_400_000)


def test_leading_mentions_in_a_group_are_stripped() -> None:
    msg = to_inbound(robot(conversationType="2", text={"content": "@订单助手 @李敏 查询 OB00000001"}))
    assert msg is not None and msg.text == "查询 OB00000001"


def test_a_message_without_a_usable_session_webhook_has_no_hint() -> None:
    for changes in ({"sessionWebhook": None}, {"sessionWebhookExpiredTime": "soon"},
                    {"sessionWebhookExpiredTime": None}):
        msg = to_inbound(robot(**changes))
        assert msg is not None and msg.reply_hint == ""


@pytest.mark.parametrize(
    "changes",
    [
        {"msgtype": "picture"},
        {"senderStaffId": None},  # someone outside the organisation
        {"msgId": ""},
        {"conversationType": "3"},
        {"text": "帮助"},
        {"text": {"content": 42}},
    ],
)
def test_what_the_bot_does_not_act_on_is_none(changes: dict[str, object]) -> None:
    assert to_inbound(robot(**changes)) is None


def test_session_webhook_hint_round_trip_and_validity() -> None:
    webhook = SessionWebhook("https://example.invalid/a?session=x|y", NOW_MS + 120_000)
    assert SessionWebhook.parse(webhook.hint()) == webhook
    assert webhook.valid_at(NOW_MS) and not webhook.valid_at(NOW_MS + 90_000)
    for garbage in ("", "no-bar", "ftp://x|1", "https://x|soon", None, 5):
        assert SessionWebhook.parse(garbage) is None
