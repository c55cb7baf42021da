"""WeCom's callback protocol through the whole app: verification, refusals, de-duplication, replies."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.keys import DB
from integrations.db import tables as t
from integrations.fakes.wecom_signer import sign_url_verification, text_xml
from tests.e2e.conftest import AES_KEY, CORP_ID, TOKEN, Chat

VECTOR = Path(__file__).parents[1] / "vectors" / "wecom_callback_official.json"


async def inbox_rows(chat: Chat) -> int:
    async with chat.app[DB].engine.connect() as conn:
        return len((await conn.execute(select(t.inbound_messages))).all())


async def test_url_verification_answers_the_echo(chat: Chat) -> None:
    query = sign_url_verification(TOKEN, AES_KEY, CORP_ID, "echo-1288432023552776189", int(time.time()), "n1")
    response = await chat.client.get("/wecom/callback", params=query)
    assert (response.status, await response.text()) == (200, "echo-1288432023552776189")


async def test_official_vector_through_the_app(chat: Chat) -> None:
    if not VECTOR.exists():
        pytest.skip(f"official vector not found at {VECTOR}")
    v = json.loads(VECTOR.read_text(encoding="utf-8"))
    chat.settings.wecom.token, chat.settings.wecom.aes_key = SecretStr(v["token"]), SecretStr(v["encoding_aes_key"])
    chat.settings.wecom.corp_id, chat.settings.wecom.replay_window_s = v["corp_id"], 0
    u = v["url_verify"]
    response = await chat.client.get("/wecom/callback", params={
        "msg_signature": u["msg_signature"], "timestamp": u["timestamp"], "nonce": u["nonce"], "echostr": u["echostr"]})
    assert (response.status, await response.text()) == (200, u["expected_reply"])
    m = v["message"]
    response = await chat.client.post(
        "/wecom/callback", data=m["body"].encode(),
        params={"msg_signature": m["msg_signature"], "timestamp": m["timestamp"], "nonce": m["nonce"]})
    assert response.status == 200
    await chat.settle()
    # ChenJiaShun is not a user: the message was stored once and politely refused in chat
    assert await inbox_rows(chat) == 1
    assert "还没有开通订单助手" in chat.last("ChenJiaShun")


async def test_tampered_signature_is_refused_and_nothing_happens(chat: Chat) -> None:
    await chat.add_user("sup1", "李敏", "supervisor")
    from integrations.fakes.wecom_signer import sign_callback

    query, body = sign_callback(TOKEN, AES_KEY, CORP_ID, text_xml("sup1", "帮助", "1", int(time.time()), corp_id=CORP_ID),
                                int(time.time()), "n")
    query["msg_signature"] = "0" * 40
    response = await chat.client.post("/wecom/callback", params=query, data=body)
    assert response.status == 403
    await chat.settle()
    assert chat.fake.messages == [] and await inbox_rows(chat) == 0


async def test_wrong_corp_is_refused(chat: Chat) -> None:
    chat.settings.wecom.corp_id = "ww-someone-else"
    assert await chat.say("sup1", "帮助") == 403
    assert await inbox_rows(chat) == 0


async def test_stale_timestamp_is_refused(chat: Chat) -> None:
    await chat.add_user("sup1", "李敏", "supervisor")
    xml = text_xml("sup1", "帮助", "77", int(time.time()) - 3600, corp_id=CORP_ID)
    assert await chat.post_xml(xml, timestamp=int(time.time()) - 3600) == 403
    await chat.settle()
    assert chat.fake.messages == []


async def test_missing_parameters_and_garbage_get_400(chat: Chat) -> None:
    assert (await chat.client.post("/wecom/callback", data=b"<xml/>")).status == 400
    response = await chat.client.post("/wecom/callback", params={"msg_signature": "a", "timestamp": str(int(time.time())),
                                                                 "nonce": "n"}, data=b"not xml at all")
    assert response.status == 400


async def test_oversized_body_is_refused(chat: Chat) -> None:
    params = {"msg_signature": "a", "timestamp": str(int(time.time())), "nonce": "n"}
    response = await chat.client.post("/wecom/callback", params=params, data=b"x" * (chat.settings.http.max_body_bytes + 1))
    assert response.status == 413


async def test_the_same_msgid_three_times_is_answered_once(chat: Chat) -> None:
    await chat.add_user("sup1", "李敏", "supervisor")
    for _ in range(3):
        assert await chat.say("sup1", "帮助", msg_id="5550001") == 200
    await chat.settle()
    assert len(chat.received("sup1")) == 1
    assert "查询" in chat.last("sup1")


async def test_help_is_answered(chat: Chat) -> None:
    await chat.add_user("wh1", "王强", "warehouse", store="SH01")
    await chat.say("wh1", "帮助")
    await chat.settle()
    assert "发货" in chat.last("wh1")


async def test_unknown_sender_is_refused_politely_and_audited(chat: Chat) -> None:
    await chat.say("stranger", "查询 OB00000001")
    await chat.settle()
    assert "还没有开通订单助手" in chat.last("stranger")
    async with chat.app[DB].engine.connect() as conn:
        rows = (await conn.execute(select(t.audit_log).where(t.audit_log.c.actor == "stranger"))).all()
    assert [r._mapping["outcome"] for r in rows] == ["refused"]
