"""A decrypted WeCom message read without the XML parser gives exactly what the parser gives, or is left to it."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.wecom_protocol import CallbackRejected, _flat_fields, _parse_xml
from integrations.fakes.wecom_signer import card_click_xml, scan_xml, text_xml

TRICKY = st.lists(st.sampled_from([*"aZ09 查询\t\n\r<>&];'\"\x01\x0b\u3000\ufffe𝄞", "]]>", "<![CDATA["]),
                  max_size=12).map("".join)
TAGS = st.sampled_from(["Content", "MsgId", "FromUserName", "A_1", "x", "Content"])  # a repeated tag too


@st.composite
def documents(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        tag, text = draw(TAGS), draw(TRICKY)
        body = f"<![CDATA[{text}]]>" if draw(st.booleans()) else text
        parts.append(draw(st.sampled_from(["", " ", "\n  ", "junk"])) + f"<{tag}>{body}</{tag}>")
    return "<xml>" + "".join(parts) + draw(st.sampled_from(["", "\n"])) + "</xml>"


def parsed(document: str) -> dict[str, str] | None:
    try:
        return _parse_xml(document.encode("utf-8", "surrogatepass"))
    except CallbackRejected:
        return None


@settings(max_examples=400, deadline=None)
@given(documents())
@example("<xml><Content><![CDATA[a]]>b]]></Content></xml>")
@example("<xml><A><![CDATA[x]]></B><B><![CDATA[y]]></A></xml>")
@example("<xml><Content>a&amp;b</Content></xml>")
@example("<xml><Content>a\r\nb</Content></xml>")
@example("<xml><Content><![CDATA[]]></Content><MsgId></MsgId></xml>")
def test_a_flat_reading_agrees_with_the_parser(document: str) -> None:
    fast = _flat_fields(document)
    if fast is not None:
        assert fast == parsed(document)


@pytest.mark.parametrize("document", [
    text_xml("wh1", "查询 OB0001 <急> & ]]", "7001", 1_760_000_000, corp_id="ww1"),
    text_xml("wh1", "", "7002", 1_760_000_000, corp_id="ww1"),
    card_click_xml("wh1", "approve:AS000012", "task-1", "code-1", 1_760_000_000, corp_id="ww1"),
])
def test_what_wecom_sends_is_read_without_the_parser(document: str) -> None:
    assert _flat_fields(document) == parsed(document) and _flat_fields(document)


def test_a_nested_scan_is_left_to_the_parser() -> None:
    document = scan_xml("wh1", "SF1234567890", 1_760_000_000, corp_id="ww1")
    assert _flat_fields(document) is None and (parsed(document) or {}).get("ScanResult") == "SF1234567890"
