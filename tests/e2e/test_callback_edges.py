"""Hostile envelopes on the platform callbacks, on SQLite and PostgreSQL: each class of broken input is a 4xx
with nothing stored and nothing logged at ERROR; a signature made with an empty secret never passes."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

import bot.wecom_protocol as wecom_protocol
from bot.app import create_app
from bot.dingtalk_cards import CALLBACK_PATH as CARD_PATH
from bot.dingtalk_cards import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from bot.dingtalk_protocol import sign
from config.settings import DingtalkSettings, LogisticsSettings, Settings
from integrations.fakes.dingtalk import FakeDingTalk
from integrations.fakes.wecom_signer import scan_xml, sign_callback, sign_url_verification, text_xml
from integrations.logistics.kuaidi100_push import callback_sign
from tests.e2e.conftest import AES_KEY, CORP_ID, TOKEN, Chat
from tests.e2e.dingtalk_harness import Ding, staff_id
from tests.e2e.edge_helpers import errors_logged, raw_request, stored_rows

KUAIDI = "/channels/kuaidi100/callback"
SALT = "edge-salt-42"
NESTED = b"<xml>" + b"<a>" * 5000 + b"x" + b"</a>" * 5000 + b"</xml>"
UNKNOWN_ENCODING = b'<?xml version="1.0" encoding="x-no-such-charset"?><xml><Encrypt>abc</Encrypt></xml>'
NOT_A_TEXT_ENCODING = b'<?xml version="1.0" encoding="rot13"?><xml><Encrypt>abc</Encrypt></xml>'
MULTIBYTE_ENCODING = b'<?xml version="1.0" encoding="gbk"?><xml><Encrypt>abc</Encrypt></xml>'


def push_form(waybill: str = "SF100", salt: str = SALT) -> dict[str, str]:
    param = json.dumps({"status": "polling", "lastResult": {"state": "3", "nu": waybill, "com": "shunfeng",
                                                             "data": [{"time": "2024-05-01 10:00:00", "context": "签收"}]}})
    return {"param": param, "sign": callback_sign(param, salt)}


@pytest.fixture
async def courier(aiohttp_client: Any, db_url: str) -> TestClient:
    return await aiohttp_client(create_app(Settings(database_url=db_url, logistics=LogisticsSettings(salt=SALT)),
                                           deliver=False))


def signed_query(xml: str, *, token: str = TOKEN, aes_key: str = AES_KEY) -> tuple[dict[str, str], bytes]:
    return sign_callback(token, aes_key, CORP_ID, xml, int(time.time()), "n0nce")


# --- WeCom ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [NESTED, UNKNOWN_ENCODING, NOT_A_TEXT_ENCODING, MULTIBYTE_ENCODING],
                         ids=["nested", "unknown-encoding", "rot13", "multibyte"])
async def test_hostile_wecom_envelopes_are_400(chat: Chat, caplog: Any, body: bytes) -> None:
    before = await stored_rows(chat.app)
    query = {"msg_signature": "0" * 40, "timestamp": str(int(time.time())), "nonce": "n"}
    response = await chat.client.post("/wecom/callback", params=query, data=body)
    assert response.status == 400
    assert await stored_rows(chat.app) == before and errors_logged(caplog) == []


@pytest.mark.parametrize("plaintext", [
    "<xml>" + "<a>" * 3000 + "</a>" * 3000 + "</xml>",
    '<?xml version="1.0" encoding="x-no-such-charset"?><xml><MsgType>text</MsgType></xml>',
    "<xml><a><b><c><d><FromUserName>x</FromUserName></d></c></b></a></xml>",
], ids=["nested", "unknown-encoding", "deeper-than-wecom"])
async def test_signed_but_hostile_plaintext_is_400(chat: Chat, caplog: Any, plaintext: str) -> None:
    before = await stored_rows(chat.app)
    query, body = signed_query(plaintext)
    response = await chat.client.post("/wecom/callback", params=query, data=body)
    assert response.status == 400
    assert await stored_rows(chat.app) == before and errors_logged(caplog) == []


@pytest.mark.parametrize("query", [
    "msg_signature=%ff%fe&timestamp=1&nonce=n&echostr=e",
    "msg_signature=" + "0" * 40 + "&timestamp=" + quote("１２３") + "&nonce=n&echostr=e",
    "msg_signature=" + "0" * 40 + "&timestamp=1&nonce=%00%0a&echostr=e",
    "msg_signature=" + "0" * 40 + "&timestamp=1&nonce=n&echostr=" + quote("密文"),
], ids=["invalid-utf8", "fullwidth-digits", "control-chars", "non-ascii-echostr"])
async def test_malformed_verification_queries_are_4xx(chat: Chat, caplog: Any, query: str) -> None:
    response = await chat.client.get("/wecom/callback?" + query)
    assert 400 <= response.status < 500 and errors_logged(caplog) == []


@pytest.mark.parametrize("empty", ["token", "aes_key", "corp_id"])
async def test_wecom_refuses_everything_when_a_credential_is_empty(chat: Chat, empty: str) -> None:
    """An empty token makes the signature computable by anyone: nothing may pass then."""
    await chat.add_user("sup1", "李敏", "supervisor")
    token = "" if empty == "token" else TOKEN
    setattr(chat.settings.wecom, empty, "" if empty == "corp_id" else SecretStr(""))
    before = await stored_rows(chat.app)
    query, body = signed_query(text_xml("sup1", "帮助", "9001", int(time.time()), corp_id=CORP_ID), token=token)
    assert (await chat.client.post("/wecom/callback", params=query, data=body)).status == 403
    verify = sign_url_verification(token, AES_KEY, CORP_ID, "echo", int(time.time()), "n1")
    response = await chat.client.get("/wecom/callback", params=verify)
    assert response.status == 403  # never a 500: the admin's URL check says what is missing
    assert f"ORDERBOT_WECOM__{empty.upper()}" in await response.text()
    await chat.settle()
    assert await stored_rows(chat.app) == before and chat.fake.messages == []


async def test_a_forged_signature_is_compared_in_constant_time_and_never_decrypted(
    chat: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    decrypted: list[str] = []
    real_compare, real_decrypt = wecom_protocol.hmac.compare_digest, wecom_protocol.PrpCrypto.decrypt

    def spy_compare(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real_compare(a, b)

    def spy_decrypt(self: Any, text: str, corp_id: str) -> Any:
        decrypted.append(text)
        return real_decrypt(self, text, corp_id)

    monkeypatch.setattr(wecom_protocol.hmac, "compare_digest", spy_compare)
    monkeypatch.setattr(wecom_protocol.PrpCrypto, "decrypt", spy_decrypt)
    query, body = signed_query(text_xml("sup1", "帮助", "9002", int(time.time()), corp_id=CORP_ID))
    good_signature, query["msg_signature"] = query["msg_signature"], "f" * 40
    assert (await chat.client.post("/wecom/callback", params=query, data=body)).status == 403
    assert compared == [(good_signature.encode(), b"f" * 40)] and decrypted == []
    query["msg_signature"] = good_signature
    assert (await chat.client.post("/wecom/callback", params=query, data=body)).status == 200
    assert len(decrypted) == 1


# --- Kuaidi100 -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("content_type", "body"), [
    ("application/x-www-form-urlencoded", b"param=\xff\xfe&sign=x"),
    ("application/x-www-form-urlencoded", b"param=%ff%fe&sign=x"),
    ("application/x-www-form-urlencoded; charset=x-no-such-charset", b"param=a&sign=b"),
    ("application/x-www-form-urlencoded; charset=gbk", b"param=a&sign=b"),
    ("multipart/form-data; boundary=zzz", b"--zzz\r\nContent-Disposition: form-data; name=param\r\n\r\n"),
    ("multipart/form-data", b"garbage"),
    ("application/json", b'{"param": "a", "sign": "b"}'),
    ("application/x-www-form-urlencoded", b"&".join(b"f%d=1" % i for i in range(5000))),
    ("application/x-www-form-urlencoded", b"param=a&param=b&sign=c"),
], ids=["invalid-utf8", "invalid-utf8-escaped", "unknown-charset", "other-charset", "bad-multipart",
        "multipart-no-boundary", "json", "many-fields", "duplicate-field"])
async def test_malformed_courier_forms_are_4xx(courier: TestClient, caplog: Any, content_type: str,
                                               body: bytes) -> None:
    before = await stored_rows(courier.server.app)
    response = await courier.post(KUAIDI, data=body, headers={"Content-Type": content_type})
    assert 400 <= response.status < 500, await response.text()
    assert (await response.json())["result"] is False
    assert await stored_rows(courier.server.app) == before and errors_logged(caplog) == []


async def test_a_courier_push_with_no_salt_configured_is_refused(aiohttp_client: Any, db_url: str) -> None:
    """The default: no salt. A push signed with the empty salt must not mark anything delivered."""
    client = await aiohttp_client(create_app(Settings(database_url=db_url), deliver=False))
    before = await stored_rows(client.server.app)
    assert (await client.post(KUAIDI, data=push_form(salt=""))).status == 403
    assert await stored_rows(client.server.app) == before


@pytest.mark.parametrize("last_result", [
    {"state": "3", "nu": "SF1", "data": {"not": "a list"}},
    {"state": "3", "nu": "SF1", "data": ["not an object"]},
    {"state": "3", "nu": "SF1\nforged", "data": []},
    {"state": "3", "nu": "SF1", "data": [{"time": "2024-05-01 10:00:00", "context": "签收\x00"}]},
], ids=["data-object", "data-strings", "waybill-newline", "nul-in-context"])
async def test_a_signed_but_malformed_push_never_fails(courier: TestClient, caplog: Any,
                                                       last_result: dict[str, Any]) -> None:
    param = json.dumps({"status": "polling", "lastResult": last_result})
    response = await courier.post(KUAIDI, data={"param": param, "sign": callback_sign(param, SALT)})
    assert response.status in (200, 400) and errors_logged(caplog) == []


# --- DingTalk headers ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [b"sign: \xff\xfe==", b"timestamp: \xc0\xaf", b"Authorization: Bearer \xff"])
async def test_undecodable_header_bytes_are_400(ding: Ding, caplog: Any, header: bytes) -> None:
    headers, payload = ding.fake.robot_message(staff_id("sup1"), "帮助", "msg-h1", "cid-sup1")
    kept = b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items() if k.encode() not in header)
    body = json.dumps(payload).encode()
    head = (b"POST /dingtalk/callback HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n" + kept
            + header + b"\r\nContent-Length: " + str(len(body)).encode())
    before = await stored_rows(ding.app)
    assert await raw_request(ding.client, head, body) == 400
    assert await stored_rows(ding.app) == before and errors_logged(caplog) == []


async def test_a_non_ascii_sign_is_a_bad_sign(ding: Ding) -> None:
    headers, payload = ding.fake.robot_message(staff_id("sup1"), "帮助", "msg-h2", "cid-sup1")
    headers["sign"] = quote("签名")
    assert await ding.post(headers, payload) == 403


async def test_the_card_callback_refuses_an_empty_card_secret(
    aiohttp_client: Any, e2e_settings: Settings, fake_dingtalk: FakeDingTalk
) -> None:
    settings = e2e_settings.model_copy(update={"dingtalk": DingtalkSettings(
        app_key=fake_dingtalk.app_key, app_secret=fake_dingtalk.app_secret, api_base=fake_dingtalk.base_url,
        card_template_id="tpl", card_callback_route_key="route", card_callback_secret="")})
    client = await aiohttp_client(create_app(settings, deliver=False))
    before = await stored_rows(client.server.app)
    stamp = str(int(time.time() * 1000))
    body = {"type": "actionCallback", "outTrackId": "card-1", "userId": staff_id("sup1"),
            "content": json.dumps({"cardPrivateData": {"params": {"command": "approve AS000001"}}})}
    response = await client.post(CARD_PATH, json=body,
                                 headers={TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: signature("", stamp)})
    assert response.status == 403
    assert await stored_rows(client.server.app) == before


async def test_the_robot_callback_refuses_an_empty_app_secret(ding: Ding) -> None:
    ding.settings.dingtalk.app_secret = SecretStr("")
    stamp = str(int(time.time() * 1000))
    _, payload = ding.fake.robot_message(staff_id("sup1"), "帮助", "msg-h3", "cid-sup1")
    assert await ding.post({"timestamp": stamp, "sign": sign("", stamp)}, payload) == 403
    assert (await stored_rows(ding.app))["inbound_messages"] == 0


@pytest.mark.parametrize("xml", [
    text_xml("sup1", "帮助", "9" * 129, int(time.time()), corp_id=CORP_ID),
    scan_xml("u" * 130, "CODE_128,SF1", int(time.time()), corp_id=CORP_ID),
], ids=["msgid-too-long", "event-key-too-long"])
async def test_a_signed_message_id_the_inbox_cannot_hold_is_400(chat: Chat, caplog: Any, xml: str) -> None:
    """PostgreSQL would refuse it (128 characters) inside the inbox's commit; refused at the edge instead."""
    before = await stored_rows(chat.app)
    query, body = signed_query(xml)
    response = await chat.client.post("/wecom/callback", params=query, data=body)
    assert response.status == 400
    assert await stored_rows(chat.app) == before and errors_logged(caplog) == []
