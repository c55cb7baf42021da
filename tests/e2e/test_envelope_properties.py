"""Properties of the platform callbacks over generated envelopes, on SQLite and PostgreSQL (which enforces lengths
and refuses NUL; CI runs both): never a 5xx, never anything stored without a valid signature, never an ERROR log.

Unsigned envelopes (random query, headers and bodies, including XML nested deep, unknown encodings, invalid
UTF-8) must leave every table as it was. Signed envelopes with random content must still never be a 5xx.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote, quote_from_bytes
from xml.sax.saxutils import escape

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from bot.app import create_app
from bot.dingtalk_protocol import sign as ding_sign
from config.settings import LogisticsSettings, Settings
from integrations.fakes.wecom_signer import sign_callback
from integrations.logistics.kuaidi100_push import callback_sign
from tests.e2e.conftest import AES_KEY, CORP_ID, TOKEN, Chat
from tests.e2e.dingtalk_harness import APP_SECRET, Ding
from tests.e2e.edge_helpers import errors_logged, stored_rows

KUAIDI = "/channels/kuaidi100/callback"
SALT = "prop-salt-7"
PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# --- strategies ---------------------------------------------------------------------------------------------

any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
header_text = st.text(st.characters(min_codepoint=0x20, blacklist_categories=("Cs", "Cc")), max_size=60)
tag = st.sampled_from(["xml", "Encrypt", "MsgId", "FromUserName", "MsgType", "Content", "Event", "EventKey",
                       "CreateTime", "ScanCodeInfo", "ScanResult", "ChatId", "a"])
element = st.recursive(
    any_text.map(escape),
    lambda inner: st.tuples(tag, st.lists(inner, max_size=4)).map(lambda t: f"<{t[0]}>{''.join(t[1])}</{t[0]}>"),
    max_leaves=25,
)
prolog = st.sampled_from([
    "", '<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-8"?>', '<?xml version="1.0" encoding="x-none"?>',
    '<?xml version="1.0" encoding="rot13"?>', '<?xml version="1.0" encoding="utf-16"?>',
    '<?xml version="1.0" encoding="gbk"?>', '<!DOCTYPE xml [<!ENTITY e "boom">]>',
    '<!DOCTYPE xml SYSTEM "http://example.invalid/x.dtd">',
])
xml_document = st.builds(lambda p, body: p + f"<xml>{body}</xml>", prolog, st.lists(element, max_size=6).map("".join))
deep = st.integers(1, 6000).map(lambda n: "<xml>" + "<a>" * n + "</a>" * n + "</xml>")
base64ish = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=200)
envelope = base64ish.map(lambda e: f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
                                   f"<Encrypt><![CDATA[{e}]]></Encrypt><AgentID>1</AgentID></xml>")
wecom_body = st.one_of(st.binary(max_size=600), xml_document.map(str.encode), deep.map(str.encode),
                       envelope.map(str.encode),
                       st.tuples(envelope, st.binary(max_size=40)).map(lambda t: t[0].encode() + t[1]))
query_value = st.one_of(any_text.map(lambda s: quote(s, safe="")), st.binary(max_size=60).map(quote_from_bytes),
                        st.just("0" * 40), st.integers(-2**70, 2**70).map(str),
                        st.just(str(int(time.time()))))
query = st.dictionaries(st.sampled_from(["msg_signature", "timestamp", "nonce", "echostr", "x"]), query_value,
                        max_size=5).map(lambda q: "&".join(f"{k}={v}" for k, v in q.items()))
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=20,
)
robot_payload = st.fixed_dictionaries({}, optional={
    "msgtype": st.sampled_from(["text", "picture", ""]) | any_text,
    "msgId": st.text(st.characters(blacklist_categories=("Cs",)), max_size=128),  # past 128: sec-chat's inbox
    "senderStaffId": any_text, "conversationType": st.sampled_from(["1", "2", "3"]) | any_text,
    "conversationId": any_text, "text": st.fixed_dictionaries({"content": any_text}) | json_value,
    "sessionWebhook": any_text, "sessionWebhookExpiredTime": json_value,
})
form_type = st.sampled_from([
    "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8",
    "application/x-www-form-urlencoded; charset=x-none", "application/x-www-form-urlencoded; charset=latin-1",
    "multipart/form-data; boundary=b", "multipart/form-data", "text/plain", "application/json", "",
])


def _url(path: str, raw_query: str) -> URL:
    return URL(f"{path}?{raw_query}" if raw_query else path, encoded=True)


async def _assert_clean(client: TestClient, before: dict[str, int], status: int, caplog: Any) -> None:
    assert status < 500
    assert await stored_rows(client.server.app) == before
    assert errors_logged(caplog) == []


# --- WeCom --------------------------------------------------------------------------------------------------

@PROPERTY
@given(raw_query=query, body=wecom_body)
async def test_unsigned_wecom_posts_store_nothing(chat: Chat, caplog: Any, raw_query: str, body: bytes) -> None:
    before = await stored_rows(chat.app)
    response = await chat.client.post(_url("/wecom/callback", raw_query), data=body)
    await _assert_clean(chat.client, before, response.status, caplog)


@PROPERTY
@given(raw_query=query)
async def test_unsigned_wecom_verifications_answer_4xx(chat: Chat, caplog: Any, raw_query: str) -> None:
    before = await stored_rows(chat.app)
    response = await chat.client.get(_url("/wecom/callback", raw_query))
    assert response.status != 200
    await _assert_clean(chat.client, before, response.status, caplog)


@PROPERTY
@given(plaintext=st.one_of(xml_document, deep, any_text))
async def test_signed_wecom_posts_with_any_content_are_never_a_5xx(chat: Chat, caplog: Any, plaintext: str) -> None:
    params, body = sign_callback(TOKEN, AES_KEY, CORP_ID, plaintext, int(time.time()), "n0nce")
    response = await chat.client.post("/wecom/callback", params=params, data=body)
    assert response.status < 500 and errors_logged(caplog) == []


# --- DingTalk -----------------------------------------------------------------------------------------------

@PROPERTY
@given(timestamp=header_text | st.just(str(int(time.time() * 1000))), signature=header_text,
       body=st.one_of(st.binary(max_size=400), robot_payload.map(lambda p: json.dumps(p).encode())))
async def test_unsigned_dingtalk_callbacks_store_nothing(ding: Ding, caplog: Any, timestamp: str, signature: str,
                                                         body: bytes) -> None:
    before = await stored_rows(ding.app)
    response = await ding.client.post("/dingtalk/callback", data=body,
                                      headers={"timestamp": timestamp, "sign": signature,
                                               "Content-Type": "application/json"})
    await _assert_clean(ding.client, before, response.status, caplog)


@PROPERTY
@given(body=st.one_of(st.binary(max_size=400), robot_payload.map(lambda p: json.dumps(p).encode()),
                      json_value.map(lambda v: json.dumps(v).encode())))
async def test_signed_dingtalk_callbacks_with_any_body_are_never_a_5xx(ding: Ding, caplog: Any, body: bytes) -> None:
    stamp = str(int(time.time() * 1000))
    response = await ding.client.post("/dingtalk/callback", data=body,
                                      headers={"timestamp": stamp, "sign": ding_sign(APP_SECRET, stamp)})
    assert response.status < 500 and errors_logged(caplog) == []


# --- Kuaidi100 ----------------------------------------------------------------------------------------------

@pytest.fixture
async def courier(aiohttp_client: Any, db_url: str) -> TestClient:
    return await aiohttp_client(create_app(Settings(database_url=db_url, logistics=LogisticsSettings(salt=SALT)),
                                           deliver=False))


form_body = st.one_of(
    st.binary(max_size=400),
    st.dictionaries(st.sampled_from(["param", "sign", "x"]), any_text | st.binary(max_size=40).map(quote_from_bytes),
                    max_size=4).map(lambda f: "&".join(f"{k}={quote(v, safe='%') if isinstance(v, str) else v}"
                                                       for k, v in f.items()).encode()),
)


@PROPERTY
@given(content_type=form_type, body=form_body)
async def test_unsigned_courier_pushes_store_nothing(courier: TestClient, caplog: Any, content_type: str,
                                                     body: bytes) -> None:
    before = await stored_rows(courier.server.app)
    response = await courier.post(KUAIDI, data=body, headers={"Content-Type": content_type})
    await _assert_clean(courier, before, response.status, caplog)


@PROPERTY
@given(param=st.one_of(any_text, json_value.map(json.dumps),
                       st.fixed_dictionaries({"status": any_text, "lastResult": json_value}).map(json.dumps),
                       st.fixed_dictionaries({"lastResult": st.fixed_dictionaries(
                           {"nu": any_text, "state": any_text, "com": any_text,
                            "data": st.lists(st.fixed_dictionaries({"time": any_text, "context": any_text}) | json_value,
                                             max_size=3)})}).map(json.dumps)))
async def test_signed_courier_pushes_with_any_param_are_never_a_5xx(courier: TestClient, caplog: Any,
                                                                    param: str) -> None:
    response = await courier.post(KUAIDI, data={"param": param, "sign": callback_sign(param, SALT)})
    assert response.status < 500 and errors_logged(caplog) == []
