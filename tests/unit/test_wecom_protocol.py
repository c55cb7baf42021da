from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from bot.wecom_protocol import CallbackRejected, dedup_key, open_callback, to_inbound, verify_url
from config.settings import WecomSettings
from integrations.fakes.wecom_signer import (
    card_click_xml,
    scan_xml,
    sign_callback,
    sign_url_verification,
    text_xml,
)

# Tencent's official sample (a copy of ../shared/vectors/, kept with the tests so they always run)
VECTOR_FILE = Path(__file__).parents[1] / "vectors" / "wecom_callback_official.json"

TOKEN = "orderbot-test-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CORP_ID = "ww-test-corp"
NOW = 1_760_000_000


@pytest.fixture
def official() -> dict[str, Any]:
    if not VECTOR_FILE.exists():
        pytest.skip(f"official WeCom vector not found at {VECTOR_FILE}")
    vector: dict[str, Any] = json.loads(VECTOR_FILE.read_text(encoding="utf-8"))
    return vector


def official_settings(vector: dict[str, Any]) -> WecomSettings:
    return WecomSettings(
        corp_id=vector["corp_id"],
        token=vector["token"],
        aes_key=vector["encoding_aes_key"],
        replay_window_s=0,  # the sample's timestamps are from 2016
    )


def settings(replay_window_s: int = 300, corp_id: str = CORP_ID) -> WecomSettings:
    return WecomSettings(corp_id=corp_id, token=TOKEN, aes_key=AES_KEY, replay_window_s=replay_window_s)


def signed(xml: str, timestamp: int = NOW, corp_id: str = CORP_ID) -> tuple[dict[str, str], bytes]:
    return sign_callback(TOKEN, AES_KEY, corp_id, xml, timestamp, "nonce-1")


def open_signed(body_xml: str, **overrides: Any) -> dict[str, str]:
    query, body = signed(body_xml)
    return open_callback(
        overrides.get("settings", settings()),
        query["msg_signature"],
        query["timestamp"],
        query["nonce"],
        body,
        now=overrides.get("now", NOW),
    )


# -- the official Tencent vector ---------------------------------------------------------------


def test_official_url_verification_returns_the_echo(official: dict[str, Any]) -> None:
    get = official["url_verify"]
    echo = verify_url(
        official_settings(official),
        get["msg_signature"],
        get["timestamp"],
        get["nonce"],
        get["echostr"],
        now=time.time(),
    )
    assert echo == get["expected_reply"]


def test_official_message_decrypts_to_the_documented_fields(official: dict[str, Any]) -> None:
    post = official["message"]
    fields = open_callback(
        official_settings(official),
        post["msg_signature"],
        post["timestamp"],
        post["nonce"],
        post["body"].encode("utf-8"),
        now=time.time(),
    )
    assert fields == {
        "ToUserName": "ww1436e0e65a779aee",
        "FromUserName": "ChenJiaShun",
        "CreateTime": "1476422779",
        "MsgType": "text",
        "Content": "你好",
        "MsgId": "1456453720",
        "AgentID": "1000002",
    }


def test_official_message_is_refused_as_stale_when_the_window_is_on(official: dict[str, Any]) -> None:
    post = official["message"]
    strict = official_settings(official).model_copy(update={"replay_window_s": 300})
    with pytest.raises(CallbackRejected) as refused:
        open_callback(
            strict,
            post["msg_signature"],
            post["timestamp"],
            post["nonce"],
            post["body"].encode(),
            now=time.time(),
        )
    assert refused.value.status == 403


# -- our own signer round-trips --------------------------------------------------------------------


def test_signed_url_verification_round_trips() -> None:
    query = sign_url_verification(TOKEN, AES_KEY, CORP_ID, "echo-4711", NOW, "n1")
    assert verify_url(
        settings(), query["msg_signature"], query["timestamp"], query["nonce"], query["echostr"], NOW
    ) == ("echo-4711")


def test_url_verification_with_a_tampered_signature_is_refused() -> None:
    query = sign_url_verification(TOKEN, AES_KEY, CORP_ID, "echo-4711", NOW, "n1")
    with pytest.raises(CallbackRejected) as refused:
        verify_url(settings(), "0" * 40, query["timestamp"], query["nonce"], query["echostr"], NOW)
    assert refused.value.status == 403


# -- refusals ------------------------------------------------------------------------------------


def test_tampered_signature_is_refused_with_403() -> None:
    query, body = signed(text_xml("lisi", "查询 SO1", "1001", NOW, corp_id=CORP_ID))
    tampered = ("1" if query["msg_signature"][0] != "1" else "2") + query["msg_signature"][1:]
    with pytest.raises(CallbackRejected) as refused:
        open_callback(settings(), tampered, query["timestamp"], query["nonce"], body, now=NOW)
    assert refused.value.status == 403


def test_message_encrypted_for_another_corp_is_refused_with_403() -> None:
    query, body = signed(text_xml("lisi", "查询 SO1", "1001", NOW), corp_id="ww-other-corp")
    with pytest.raises(CallbackRejected) as refused:
        open_callback(settings(), query["msg_signature"], query["timestamp"], query["nonce"], body, now=NOW)
    assert refused.value.status == 403
    assert "corp" in refused.value.reason


@pytest.mark.parametrize("skew", [301, -301, 86_400])
def test_timestamp_outside_the_window_is_refused_with_403(skew: int) -> None:
    with pytest.raises(CallbackRejected) as refused:
        open_signed(text_xml("lisi", "hi", "1001", NOW), now=NOW + skew)
    assert refused.value.status == 403


def test_timestamp_at_the_edge_of_the_window_is_accepted() -> None:
    assert open_signed(text_xml("lisi", "hi", "1001", NOW), now=NOW + 300)["Content"] == "hi"


def test_window_zero_switches_the_timestamp_check_off() -> None:
    fields = open_signed(
        text_xml("lisi", "hi", "1001", NOW), settings=settings(replay_window_s=0), now=NOW + 10**6
    )
    assert fields["MsgId"] == "1001"


def test_non_numeric_timestamp_is_refused() -> None:
    query, body = signed(text_xml("lisi", "hi", "1001", NOW))
    with pytest.raises(CallbackRejected) as refused:
        open_callback(
            settings(replay_window_s=0), query["msg_signature"], "soon", query["nonce"], body, now=NOW
        )
    assert refused.value.status == 400


@pytest.mark.parametrize(
    "body",
    [b"<xml><Encrypt>abc</Encrypt>", b"not xml at all", b"", b"<xml><ToUserName>x</ToUserName></xml>"],
    ids=["unclosed", "garbage", "empty", "no-encrypt"],
)
def test_malformed_outer_xml_is_refused_with_400(body: bytes) -> None:
    with pytest.raises(CallbackRejected) as refused:
        open_callback(settings(), "sig", str(NOW), "nonce", body, now=NOW)
    assert refused.value.status == 400


def test_undecryptable_encrypt_is_refused() -> None:
    query, _ = signed(text_xml("lisi", "hi", "1001", NOW))
    body = b"<xml><Encrypt><![CDATA[%%%not-base64%%%]]></Encrypt></xml>"
    with pytest.raises(CallbackRejected):
        open_callback(settings(), query["msg_signature"], query["timestamp"], query["nonce"], body, now=NOW)


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE xml [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<xml><ToUserName>ww-test-corp</ToUserName><FromUserName>lisi</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol9;</Content><MsgId>1</MsgId><Encrypt>&lol9;</Encrypt></xml>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>ww-test-corp</ToUserName><FromUserName>lisi</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&secret;</Content><MsgId>1</MsgId><Encrypt>&secret;</Encrypt></xml>"""


@pytest.mark.parametrize(
    "hostile", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"]
)
def test_hostile_xml_as_the_outer_body_is_refused(hostile: str) -> None:
    with pytest.raises(CallbackRejected) as refused:
        open_callback(settings(), "sig", str(NOW), "nonce", hostile.encode(), now=NOW)
    assert refused.value.status == 400
    assert "Forbidden" in refused.value.reason  # refused by the hardened parser, before any signature check


@pytest.mark.parametrize(
    "hostile", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"]
)
def test_hostile_xml_inside_a_correctly_signed_message_is_refused(hostile: str) -> None:
    with pytest.raises(CallbackRejected) as refused:
        open_signed(hostile)
    assert refused.value.status == 400
    assert "Forbidden" in refused.value.reason


# -- normalisation --------------------------------------------------------------------------------


def test_text_message_becomes_a_text_inbound() -> None:
    inbound = to_inbound(open_signed(text_xml("lisi", "查询　SO20240001", "7301", NOW, corp_id=CORP_ID)))
    assert inbound is not None
    assert (inbound.platform, inbound.kind, inbound.sender, inbound.conversation) == (
        "wecom",
        "text",
        "lisi",
        "lisi",
    )
    assert inbound.text == "查询　SO20240001"
    assert inbound.message_id == "7301"


def test_card_click_carries_key_task_and_response_code() -> None:
    xml = card_click_xml("zhangmin", "approve AS000012", "refund-AS000012", "rc-abc", NOW, corp_id=CORP_ID)
    inbound = to_inbound(open_signed(xml))
    assert inbound is not None
    assert inbound.kind == "card_click"
    assert inbound.text == inbound.event_key == "approve AS000012"
    assert inbound.card_task_id == "refund-AS000012"
    assert inbound.card_response_code == "rc-abc"
    assert inbound.message_id == "click:rc-abc"  # WeCom's ResponseCode is unique per click


def test_scan_surfaces_the_nested_scan_result() -> None:
    fields = open_signed(scan_xml("wanggang", "SF1234567890", NOW, corp_id=CORP_ID))
    inbound = to_inbound(fields)
    assert fields["ScanType"] == "barcode"
    assert inbound is not None
    assert (inbound.kind, inbound.text, inbound.scan_result) == ("scan", "SF1234567890", "SF1234567890")
    assert inbound.message_id.startswith(f"wanggang:{NOW}:scancode_waitmsg:")


def event_fields(event: str, **extra: str) -> dict[str, str]:
    return {"FromUserName": "lisi", "CreateTime": str(NOW), "MsgType": "event", "Event": event, **extra}


def test_menu_click_becomes_a_menu_inbound() -> None:
    inbound = to_inbound(event_fields("click", EventKey="tasks"))
    assert inbound is not None
    assert (inbound.kind, inbound.text, inbound.event_key) == ("menu", "tasks", "tasks")
    assert inbound.message_id.startswith(f"lisi:{NOW}:click:")


def test_entering_the_agent_becomes_an_enter_inbound() -> None:
    inbound = to_inbound(event_fields("enter_agent"))
    assert inbound is not None
    assert (inbound.kind, inbound.text) == ("enter", "")


def test_group_chat_id_becomes_the_conversation() -> None:
    inbound = to_inbound(
        {"FromUserName": "lisi", "MsgType": "text", "Content": "概况", "MsgId": "9", "ChatId": "wr-store-07"}
    )
    assert inbound is not None
    assert (inbound.sender, inbound.conversation) == ("lisi", "wr-store-07")


@pytest.mark.parametrize(
    "fields",
    [
        {"FromUserName": "lisi", "MsgType": "image", "PicUrl": "http://x", "MsgId": "1"},
        event_fields("subscribe"),
        event_fields("location"),
        {"MsgType": "text", "Content": "hi", "MsgId": "1"},
        {},
    ],
    ids=["image", "subscribe", "location", "no-sender", "empty"],
)
def test_anything_else_is_ignored(fields: dict[str, str]) -> None:
    assert to_inbound(fields) is None


def test_dedup_key_uses_msg_id_for_messages_and_sender_time_event_otherwise() -> None:
    assert dedup_key({"MsgId": "1456453720", "FromUserName": "lisi"}) == "1456453720"
    assert dedup_key(event_fields("enter_agent")) == f"lisi:{NOW}:enter_agent"
    assert dedup_key(event_fields("click", EventKey="tasks")) != dedup_key(event_fields("enter_agent"))
    assert dedup_key(event_fields("click", EventKey="tasks")) == dedup_key(event_fields("click", EventKey="tasks"))


def test_two_taps_in_one_second_have_two_keys_and_a_resent_tap_has_the_same() -> None:
    def tap(code: str, key: str = "approve AS000012") -> dict[str, str]:
        return event_fields("template_card_event", EventKey=key, TaskId="approve-AS000012", ResponseCode=code)

    assert dedup_key(tap("rc-1")) != dedup_key(tap("rc-2"))  # same person, second, card and button
    assert dedup_key(tap("rc-1")) == dedup_key(tap("rc-1"))  # WeCom's re-send of the same click
    long_code = "R" * 500
    assert len(dedup_key(tap(long_code))) <= 128
    assert dedup_key(tap(long_code)) != dedup_key(tap(long_code + "x"))


def test_two_scans_in_one_second_have_two_keys_and_a_resent_scan_has_the_same() -> None:
    def scan(code: str) -> dict[str, str]:
        return event_fields("scancode_waitmsg", EventKey="scan", ScanType="barcode", ScanResult=code)

    assert dedup_key(scan("CODE_128,SF1")) != dedup_key(scan("CODE_128,SF2"))
    assert dedup_key(scan("CODE_128,SF1")) == dedup_key(scan("CODE_128,SF1"))
    assert dedup_key({**scan("CODE_128,SF1"), "MsgId": "77"}) == "77"  # the platform's own id, when it gives one
    assert len(dedup_key(scan("X" * 2000 + "\x00"))) <= 128  # any content fits the inbox key


def test_a_valid_envelope_with_a_dtd_bolted_on_still_goes_through_the_hardened_parser() -> None:
    """The fast path takes the ciphertext only from a body with no declaration at all."""
    query, body = sign_callback(TOKEN_FOR_FASTPATH, AES_FOR_FASTPATH, CORP_FOR_FASTPATH,
                                "<xml><MsgType>text</MsgType></xml>", NOW, "n")
    bolted = b'<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + body
    fast = WecomSettings(corp_id=CORP_FOR_FASTPATH, token=TOKEN_FOR_FASTPATH, aes_key=AES_FOR_FASTPATH)
    assert open_callback(fast, query["msg_signature"], query["timestamp"], query["nonce"], body, now=NOW) == {
        "MsgType": "text"}
    with pytest.raises(CallbackRejected) as refused:
        open_callback(fast, query["msg_signature"], query["timestamp"], query["nonce"], bolted, now=NOW)
    assert refused.value.status == 400 and "Forbidden" in refused.value.reason


TOKEN_FOR_FASTPATH = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
AES_FOR_FASTPATH = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
CORP_FOR_FASTPATH = "ww1436e0e65a779aee"
