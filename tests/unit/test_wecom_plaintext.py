"""The decrypted message's short path (two patterns instead of the XML parser) reads every document exactly as the
parser does, and refuses what the parser refuses: property tests over flat documents and over XML-ish junk."""

from __future__ import annotations

from xml.sax.saxutils import escape

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.wecom_protocol import _FLAT_DOCUMENT, CallbackRejected, _parse_plaintext, _parse_xml

TAGS = st.sampled_from(["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "AgentID",
                        "Event", "EventKey", "A_1", "b"])
# any character, with the ones XML treats specially drawn often: control characters, CR, "]]>", "&", "<"
TEXT = st.text(st.one_of(st.sampled_from("\r\n\t\x00\x01\x0b\x1f&<>]\ufffe"), st.characters(codec="utf-8")),
               max_size=40)


def parsed(document: str) -> dict[str, str] | str:
    """The parser's reading, or the refusal."""
    try:
        return _parse_xml(document.encode("utf-8"))
    except CallbackRejected:
        return "refused"


def fast(document: str) -> dict[str, str] | str:
    try:
        return _parse_plaintext(document)
    except CallbackRejected:
        return "refused"


@st.composite
def flat_documents(draw: st.DrawFn) -> str:
    parts = []
    for tag, value in draw(st.lists(st.tuples(TAGS, TEXT), max_size=8)):
        as_cdata = draw(st.booleans())
        body = f"<![CDATA[{value}]]>" if as_cdata else escape(value) if draw(st.booleans()) else value
        parts.append(f"{draw(st.sampled_from(['', chr(10), '  ']))}<{tag}>{body}</{tag}>")
    return f"<xml>{''.join(parts)}</xml>"


@settings(max_examples=600, deadline=None)
@given(flat_documents())
def test_a_flat_document_reads_the_same_as_through_the_parser(document: str) -> None:
    assert fast(document) == parsed(document)


JUNK = st.lists(st.sampled_from(["<xml>", "</xml>", "<A>", "</A>", "<B/>", "<![CDATA[", "]]>", "]", "&amp;", "&",
                                 "x", " ", "\n", "\r", "\x01", '<A k="v">', "<!DOCTYPE x>", "<?xml version='1.0'?>",
                                 "<A><B>c</B></A>"]), max_size=14).map("".join)


@settings(max_examples=600, deadline=None)
@given(JUNK)
def test_xml_ish_junk_reads_the_same_or_is_refused_the_same(document: str) -> None:
    assert fast(document) == parsed(document)


def test_wecoms_own_messages_take_the_short_path() -> None:
    """The shape every text message and most events have: no parser at all."""
    message = ("<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName><FromUserName><![CDATA[u0001]]>"
               "</FromUserName><CreateTime>1409659813</CreateTime><MsgType><![CDATA[text]]></MsgType>"
               "<Content><![CDATA[查询 OB00000001]]></Content><MsgId>7000000000000000001</MsgId>"
               "<AgentID>1000002</AgentID></xml>")
    assert _FLAT_DOCUMENT.fullmatch(message)
    assert _parse_plaintext(message)["Content"] == "查询 OB00000001"
