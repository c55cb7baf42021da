"""WeCom callback protocol: signature, replay window, decryption, safe XML, and normalisation.

Pure functions only; the aiohttp routes call them and turn CallbackRejected into an HTTP status.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import struct
from collections.abc import Callable, Mapping
from xml.etree.ElementTree import Element, ParseError
from xml.etree.ElementTree import fromstring as plain_fromstring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as hardened_fromstring
from wechatpy.enterprise.crypto import PrpCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException

from config.settings import WecomSettings
from domain.chat import InboundMessage
from domain.limits import MESSAGE_ID

PLATFORM = "wecom"

# What a broken ciphertext can raise inside wechatpy's decryption (bad base64, padding, length, utf-8).
_UNDECRYPTABLE = (ValueError, binascii.Error, struct.error, IndexError, TypeError)
# What a hostile document can raise inside the XML parser: malformed, DTD/entities, unknown or multi-byte
# encoding declared (LookupError/ValueError), nesting too deep for Python (RecursionError).
_UNPARSABLE = (ParseError, DefusedXmlException, ValueError, LookupError, RecursionError)
MAX_XML_DEPTH = 4  # <xml><ScanCodeInfo><ScanResult> is WeCom's deepest; anything deeper is not WeCom's
# Query parameters as WeCom sends them: hex signature, digits, a short nonce, base64 echostr.
_SIGNATURE = re.compile(r"[0-9a-f]{40}")
_QUERY_VALUE = re.compile(r"[A-Za-z0-9+/=_.-]{1,2048}")
_CIPHERTEXT = re.compile(r"[A-Za-z0-9+/=]{1,100000}")  # a body's Encrypt: a 2,048-byte text and its envelope fit


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
    _check_query(timestamp, nonce, echostr)
    _check_timestamp(timestamp, now, settings.replay_window_s)
    return _verified_decrypt(settings, echostr, msg_signature, timestamp, nonce, what="echostr")


def open_callback(
    settings: WecomSettings, msg_signature: str, timestamp: str, nonce: str, body: bytes, now: float
) -> dict[str, str]:
    """Verify, decrypt and parse a POSTed callback into a flat tag → text dict."""
    _check_query(timestamp, nonce)
    _check_timestamp(timestamp, now, settings.replay_window_s)
    encrypted = _envelope_encrypt(body)
    if not encrypted:
        raise CallbackRejected("callback has no Encrypt element")
    plaintext = _verified_decrypt(settings, encrypted, msg_signature, timestamp, nonce, what="Encrypt",
                                   shape=_CIPHERTEXT)
    return _parse_plaintext(plaintext)


def dedup_key(fields: Mapping[str, str]) -> str:
    """The inbox key that drops WeCom's re-sends of one callback and nothing else.

    Messages carry MsgId, and so does any event where WeCom gives one. A card click carries ResponseCode,
    unique per click: two taps in one second are two clicks. A scan carries none: its content and time tell
    two scans in one second apart (the same code read twice in one second is one scan). Other events: sender,
    time, event and key. CreateTime has whole seconds, so the time alone never tells two taps apart.
    """
    msg_id = fields.get("MsgId", "")
    if msg_id:
        return msg_id
    event = fields.get("Event", "")
    if event == "template_card_event" and fields.get("ResponseCode"):
        code = fields["ResponseCode"]
        return f"click:{code}" if len(code) <= MESSAGE_ID.max_chars - 6 else f"click:{_digest(code)}"
    sent = f"{fields.get('FromUserName', '')}:{fields.get('CreateTime', '')}:{event}"
    if event in _SCAN_EVENTS:
        return f"{sent}:{_digest(fields.get('EventKey', ''), fields.get('ScanResult', ''))}"
    if fields.get("EventKey"):
        return f"{sent}:{_digest(fields['EventKey'])}"
    return sent


_SCAN_EVENTS = frozenset({"scancode_waitmsg", "scancode_push"})


def _digest(*parts: str) -> str:
    """A short fixed-length stand-in for content of any length or character (same content, same digest)."""
    joined = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.sha256(joined).hexdigest()[:16]


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


def _check_query(*values: str) -> None:
    if not all(_QUERY_VALUE.fullmatch(v) for v in values):
        raise CallbackRejected("malformed query parameters")


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """WeCom's msg_signature: SHA-1 of the four values sorted and joined (as wechatpy computes it)."""
    parts = sorted(v.encode("utf-8") for v in (token, timestamp, nonce, encrypted))
    return hashlib.sha1(b"".join(parts)).hexdigest()


def _verified_decrypt(
    settings: WecomSettings, encrypted: str, msg_signature: str, timestamp: str, nonce: str, *, what: str,
    shape: re.Pattern[str] = _QUERY_VALUE,
) -> str:
    """Compare the signature in constant time (wechatpy compares with `!=`), and only then decrypt.

    With no token, key or corp id configured nothing can be verified, so nothing is accepted: an empty token
    would make the signature computable by anyone.
    """
    key = _aes_key(settings.aes_key.get_secret_value() if settings.aes_key else "")
    if key is None or not settings.token or not settings.corp_id:
        missing = [name for name, ok in (("TOKEN", bool(settings.token)), ("AES_KEY", key is not None),
                                         ("CORP_ID", bool(settings.corp_id))) if not ok]
        raise CallbackRejected("WeCom callbacks are not configured: set ORDERBOT_WECOM__" + ", ORDERBOT_WECOM__".join(
            missing) + " (run `orderbot check`)", status=403)
    if not shape.fullmatch(encrypted):
        raise CallbackRejected(f"{what} is not base64")
    expected = signature(settings.token.get_secret_value(), timestamp, nonce, encrypted)
    if not (_SIGNATURE.fullmatch(msg_signature)
            and hmac.compare_digest(expected.encode(), msg_signature.encode())):
        raise CallbackRejected("bad signature", status=403)
    try:
        return str(_crypto(key).decrypt(encrypted, settings.corp_id))
    except InvalidCorpIdException as exc:
        raise CallbackRejected("message is for another corp id", status=403) from exc
    except _UNDECRYPTABLE as exc:
        raise CallbackRejected(f"{what} cannot be decrypted") from exc


@functools.lru_cache(maxsize=4)
def _aes_key(encoding_aes_key: str) -> bytes | None:
    """The 32-byte key behind the 43-character EncodingAESKey; None when unset or malformed (decoded once)."""
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True) if encoding_aes_key else b""
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == 32 else None


@functools.lru_cache(maxsize=4)
def _crypto(key: bytes) -> PrpCrypto:
    """wechatpy's cipher for a key, built once: it holds no state between messages (each decryption starts
    its own decryptor)."""
    return PrpCrypto(key)


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


# A decrypted message is nearly always one flat <xml> of elements holding a CDATA section or plain text. Such a
# document is read by these two patterns (a fifth of the parser's cost); the first admits only what the parser
# would read the same way: no attribute, entity, declaration, nesting, carriage return or character XML forbids,
# no "]]>" outside CDATA. Anything else goes to the parser.
_TEXT = r"[^\x00-\x08\x0b\x0c\x0e-\x1f\r\ufffe\uffff"
_FLAT_DOCUMENT = re.compile(
    r"[ \t\n]*<xml>((?:[ \t\n]*<([A-Za-z_][A-Za-z0-9_]*)>"
    rf"(?:<!\[CDATA\[(?:{_TEXT}\]]|\](?!\]>))*\]\]>|{_TEXT}<&\]]*)</\2>)*)[ \t\n]*</xml>[ \t\n]*"
)
_FLAT_FIELD = re.compile(r"<([A-Za-z0-9_]+)>(?:<!\[CDATA\[(.*?)\]\]>|([^<]*))</\1>", re.DOTALL)


def _parse_plaintext(document: str) -> dict[str, str]:
    """The decrypted message as a flat tag → text dict: the same as `_parse_xml` gives, faster when flat."""
    flat = _FLAT_DOCUMENT.fullmatch(document)
    if flat is None:
        return _parse_xml(document.encode("utf-8"))
    return {tag: cdata or text for tag, cdata, text in _FLAT_FIELD.findall(flat.group(1))}


def _parse_xml(document: bytes) -> dict[str, str]:
    """A document with no declaration (no DTD, so no entity) is parsed as it is, at half the cost; any other
    goes through the hardened parser, which refuses DTDs and entities."""
    try:
        if _DECLARATIONS.search(document):
            root = hardened_fromstring(document, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        else:
            root = plain_fromstring(document)
    except _UNPARSABLE as exc:
        raise CallbackRejected(f"unacceptable XML: {type(exc).__name__}") from exc
    return _flatten(root)


def _flatten(root: Element) -> dict[str, str]:
    """Leaf tag → text; nested leaves (ScanCodeInfo/ScanResult) surface without shadowing top-level tags.

    Breadth first, level by level (no recursion), and refused past WeCom's own depth.
    """
    fields: dict[str, str] = {}
    level, depth = [root], 1
    while level:
        if depth > MAX_XML_DEPTH:
            raise CallbackRejected("unacceptable XML: nested too deep")
        nested: list[Element] = []
        for parent in level:
            for child in parent:
                if len(child):
                    nested.append(child)
                elif depth == 1:
                    fields[child.tag] = child.text or ""
                else:
                    fields.setdefault(child.tag, child.text or "")
        level, depth = nested, depth + 1
    return fields
