"""WeCom callback protocol: signature, replay window, decryption, safe XML, and normalisation.

Pure functions only; the aiohttp routes call them and turn CallbackRejected into an HTTP status.
"""

from __future__ import annotations

import binascii
import re
import struct
from collections.abc import Callable, Mapping
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException

from config.settings import WecomSettings
from domain.chat import InboundMessage

PLATFORM = "wecom"

# What a broken ciphertext can raise inside wechatpy's decryption (bad base64, padding, length, utf-8).
_UNDECRYPTABLE = (ValueError, binascii.Error, struct.error, IndexError, TypeError)


class CallbackRejected(Exception):
    """A callback we refuse to process; `status` is the HTTP status to answer with."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def verify_url(
    settings: WecomSettings, msg_signature: str, timestamp: str, nonce: str, echostr: str, now: float
) -> str:
    """Answer WeCom's GET URL verification: the decrypted echo string."""
    _check_timestamp(timestamp, now, settings.replay_window_s)
    crypto = _crypto(settings)
    try:
        return str(crypto.check_signature(msg_signature, timestamp, nonce, echostr))
    except (InvalidSignatureException, InvalidCorpIdException) as exc:
        raise CallbackRejected(_refusal(exc), status=403) from exc
    except _UNDECRYPTABLE as exc:
        raise CallbackRejected("echostr cannot be decrypted") from exc


def open_callback(
    settings: WecomSettings, msg_signature: str, timestamp: str, nonce: str, body: bytes, now: float
) -> dict[str, str]:
    """Verify, decrypt and parse a POSTed callback into a flat tag → text dict."""
    _check_timestamp(timestamp, now, settings.replay_window_s)
    encrypted = _envelope_encrypt(body)
    if not encrypted:
        raise CallbackRejected("callback has no Encrypt element")
    plaintext = _decrypt(settings, encrypted, msg_signature, timestamp, nonce)
    return _parse_xml(plaintext.encode("utf-8"))


def dedup_key(fields: Mapping[str, str]) -> str:
    """MsgId for messages; events carry none, so sender, time and event name stand in for it."""
    msg_id = fields.get("MsgId", "")
    if msg_id:
        return msg_id
    return f"{fields.get('FromUserName', '')}:{fields.get('CreateTime', '')}:{fields.get('Event', '')}"


def to_inbound(fields: Mapping[str, str]) -> InboundMessage | None:
    if not fields.get("FromUserName"):
        return None
    msg_type = fields.get("MsgType")
    if msg_type == "text":
        return _inbound(fields, kind="text", text=fields.get("Content", ""))
    if msg_type == "event":
        build = _EVENT_BUILDERS.get(fields.get("Event", ""))
        return build(fields) if build else None
    return None


def _card_click(fields: Mapping[str, str]) -> InboundMessage:
    event_key = fields.get("EventKey", "")
    return _inbound(
        fields,
        kind="card_click",
        text=event_key,
        event_key=event_key,
        card_task_id=fields.get("TaskId", ""),
        card_response_code=fields.get("ResponseCode", ""),
    )


def _scan(fields: Mapping[str, str]) -> InboundMessage:
    scan_result = fields.get("ScanResult", "")
    return _inbound(
        fields, kind="scan", text=scan_result, scan_result=scan_result, event_key=fields.get("EventKey", "")
    )


def _menu(fields: Mapping[str, str]) -> InboundMessage:
    event_key = fields.get("EventKey", "")
    return _inbound(fields, kind="menu", text=event_key, event_key=event_key)


def _enter(fields: Mapping[str, str]) -> InboundMessage:
    return _inbound(fields, kind="enter")


_EVENT_BUILDERS: dict[str, Callable[[Mapping[str, str]], InboundMessage]] = {
    "template_card_event": _card_click,
    "scancode_waitmsg": _scan,
    "click": _menu,
    "enter_agent": _enter,
}


def _inbound(fields: Mapping[str, str], *, kind: str, text: str = "", **extra: str) -> InboundMessage:
    sender = fields["FromUserName"]
    return InboundMessage(
        platform=PLATFORM,
        sender=sender,
        kind=kind,
        text=text,
        message_id=dedup_key(fields),
        conversation=fields.get("ChatId") or sender,
        **extra,
    )


def _check_timestamp(timestamp: str, now: float, window_s: int) -> None:
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError) as exc:
        raise CallbackRejected("timestamp is not a number") from exc
    if window_s and abs(now - sent_at) > window_s:
        raise CallbackRejected("timestamp outside the replay window", status=403)


def _crypto(settings: WecomSettings) -> WeChatCrypto:
    return WeChatCrypto(settings.token, settings.aes_key, settings.corp_id)


def _decrypt(settings: WecomSettings, encrypted: str, msg_signature: str, timestamp: str, nonce: str) -> str:
    # Handing wechatpy a dict keeps it from parsing the body again with its own, unhardened XML parser.
    try:
        plaintext = _crypto(settings).decrypt_message({"Encrypt": encrypted}, msg_signature, timestamp, nonce)
    except (InvalidSignatureException, InvalidCorpIdException) as exc:
        raise CallbackRejected(_refusal(exc), status=403) from exc
    except _UNDECRYPTABLE as exc:
        raise CallbackRejected("Encrypt cannot be decrypted") from exc
    return str(plaintext)


def _refusal(exc: Exception) -> str:
    if isinstance(exc, InvalidCorpIdException):
        return "message is for another corp id"
    return "bad signature"


# WeCom's envelope is always this shape. Taking the ciphertext with a strict pattern, when the body has no
# DTD or entity at all, runs no XML parser on untrusted input (and costs a tenth of a parse); anything else
# goes through the hardened parser below. The ciphertext is then authenticated by the signature check.
_ENVELOPE = re.compile(rb"<Encrypt><!\[CDATA\[([A-Za-z0-9+/=]+)\]\]></Encrypt>")
_DECLARATIONS = re.compile(rb"<!(?!\[CDATA\[)")


def _envelope_encrypt(body: bytes) -> str | None:
    if not _DECLARATIONS.search(body):
        found = _ENVELOPE.findall(body)
        if len(found) == 1:
            return str(found[0].decode("ascii"))
    return _parse_xml(body).get("Encrypt")


def _parse_xml(document: bytes) -> dict[str, str]:
    try:
        root = fromstring(document, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise CallbackRejected(f"unacceptable XML: {type(exc).__name__}") from exc
    return _flatten(root)


def _flatten(root: Element) -> dict[str, str]:
    """Leaf tag → text; nested leaves (ScanCodeInfo/ScanResult) surface without shadowing top-level tags."""
    fields: dict[str, str] = {}
    nested: list[Element] = []
    for child in root:
        if len(child):
            nested.append(child)
        else:
            fields[child.tag] = child.text or ""
    for parent in nested:
        for tag, text in _flatten(parent).items():
            fields.setdefault(tag, text)
    return fields
