"""Build callbacks exactly as WeCom sends them (encrypted, signed), for tests and the demo."""

from __future__ import annotations

import hashlib
import re

from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

DEFAULT_CORP_ID = "ww-fake-corp"
DEFAULT_AGENT_ID = 1000002

_ENCRYPTED_REPLY = re.compile(
    r"<Encrypt><!\[CDATA\[(?P<encrypt>[^\]]*)\]\]></Encrypt>\s*"
    r"<MsgSignature><!\[CDATA\[(?P<signature>[0-9a-f]+)\]\]></MsgSignature>"
)


def sign_callback(
    token: str,
    aes_key: str,
    corp_id: str,
    xml: str,
    timestamp: int,
    nonce: str,
    *,
    agent_id: int = DEFAULT_AGENT_ID,
) -> tuple[dict[str, str], bytes]:
    """Query parameters and body of a POST callback carrying `xml`."""
    reply = WeChatCrypto(token, aes_key, corp_id).encrypt_message(xml, nonce, str(timestamp))
    match = _ENCRYPTED_REPLY.search(reply)
    if match is None:
        raise RuntimeError("wechatpy produced an unexpected encrypted envelope")
    body = (
        f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName>"
        f"<Encrypt><![CDATA[{match['encrypt']}]]></Encrypt>"
        f"<AgentID><![CDATA[{agent_id}]]></AgentID></xml>"
    )
    query = {"msg_signature": match["signature"], "timestamp": str(timestamp), "nonce": nonce}
    return query, body.encode("utf-8")


def sign_url_verification(
    token: str, aes_key: str, corp_id: str, echo: str, timestamp: int, nonce: str
) -> dict[str, str]:
    """Query parameters of the GET URL verification that must be answered with `echo`."""
    key = WeChatCrypto(token, aes_key, corp_id).key
    echostr = PrpCrypto(key).encrypt(echo, corp_id).decode("ascii")
    return {
        "msg_signature": _signature(token, str(timestamp), nonce, echostr),
        "timestamp": str(timestamp),
        "nonce": nonce,
        "echostr": echostr,
    }


def text_xml(
    from_user: str, content: str, msg_id: str, create_time: int, *, corp_id: str = DEFAULT_CORP_ID
) -> str:
    return _message_xml(
        corp_id,
        from_user,
        create_time,
        "text",
        f"<Content>{_cdata(content)}</Content><MsgId>{msg_id}</MsgId>",
    )


def card_click_xml(
    from_user: str,
    event_key: str,
    task_id: str,
    response_code: str,
    create_time: int,
    *,
    corp_id: str = DEFAULT_CORP_ID,
) -> str:
    event = (
        f"<Event>{_cdata('template_card_event')}</Event><EventKey>{_cdata(event_key)}</EventKey>"
        f"<TaskId>{_cdata(task_id)}</TaskId><CardType>{_cdata('button_interaction')}</CardType>"
        f"<ResponseCode>{_cdata(response_code)}</ResponseCode>"
    )
    return _message_xml(corp_id, from_user, create_time, "event", event)


def scan_xml(
    from_user: str,
    scan_result: str,
    create_time: int,
    *,
    corp_id: str = DEFAULT_CORP_ID,
    event_key: str = "scan",
) -> str:
    event = (
        f"<Event>{_cdata('scancode_waitmsg')}</Event><EventKey>{_cdata(event_key)}</EventKey>"
        f"<ScanCodeInfo><ScanType>{_cdata('barcode')}</ScanType>"
        f"<ScanResult>{_cdata(scan_result)}</ScanResult></ScanCodeInfo>"
    )
    return _message_xml(corp_id, from_user, create_time, "event", event)


def _message_xml(corp_id: str, from_user: str, create_time: int, msg_type: str, inner: str) -> str:
    return (
        f"<xml><ToUserName>{_cdata(corp_id)}</ToUserName><FromUserName>{_cdata(from_user)}</FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType>{_cdata(msg_type)}</MsgType>{inner}"
        f"<AgentID>{DEFAULT_AGENT_ID}</AgentID></xml>"
    )


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()
