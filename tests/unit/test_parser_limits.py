"""Every chat argument is held to its limit from domain/limits.py by the parser: a value the REST API or a
column would refuse is answered in one Chinese sentence and never reaches a look-up or the database."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.parser import ParsedCommand, ParseError, command_for, parse
from domain import limits
from domain.chat import InboundMessage
from domain.chat_commands import COMMANDS, Answer, ChatCommand

TOO_LONG = [
    ("查询 " + "A" * 300, "单号太长（最多 64 个字符）。"),
    ("拣货 " + "9" * 5000, "单号太长（最多 64 个字符）。"),
    ("确认 " + "1" * 25, "异常编号太长（最多 9 个字符）。"),
    ("解决 " + "1" * 25 + " 已处理", "异常编号太长（最多 9 个字符）。"),
    ("打包 OB00000012 " + "SF" * 50, "运单号太长（最多 64 个字符）。"),
    ("发货 OB00000012 " + "S" * 100, "运单号太长（最多 64 个字符）。"),
    ("确认改签 OB00000012 " + "S" * 100, "运单号太长（最多 64 个字符）。"),
    ("改地址 OB00000012 " + "上海市浦东新区张杨路" * 500, "地址太长（最多 500 个字符）。"),
    ("拒绝 AS000012 " + "不" * 501, "原因太长（最多 500 个字符）。"),
    ("解决 12 " + "x" * 501, "说明太长（最多 500 个字符）。"),
    ("同意 " + "A" * 33, "售后单号太长（最多 32 个字符）。"),
    ("解冻 " + "客" * 65, "客户太长（最多 64 个字符）。"),
    ("用户 " + "u" * 65 + " 停用", "账号太长（最多 64 个字符）。"),
    ("帮助 " + "发" * 300, "参数太长（最多 32 个字符）。"),
]
NOT_DIGITS = ["确认 ٣", "确认 三", "解决 ٣", "解决 三 已处理", "确认 12a", "ack ١٢"]


@pytest.mark.parametrize(("text", "reason"), TOO_LONG, ids=[t[:12] for t, _ in TOO_LONG])
def test_an_argument_past_its_limit_is_refused_in_one_sentence(text: str, reason: str) -> None:
    result = parse(text)
    assert isinstance(result, ParseError)
    assert (result.kind, result.message) == ("invalid_argument", reason)


@pytest.mark.parametrize("text", NOT_DIGITS)
def test_an_incident_number_is_ascii_digits(text: str) -> None:
    result = parse(text)
    assert isinstance(result, ParseError)
    assert result.message == "异常编号格式不对，应为数字，如 12。"


def test_values_at_their_limit_still_pass() -> None:
    assert parse("确认 " + "9" * 9) == ParsedCommand("ack", ("9" * 9,), "确认 " + "9" * 9)
    assert parse("确认 ９") == ParsedCommand("ack", ("9",), "确认 ９")  # a full-width digit is a digit
    address = "路" * 500
    assert parse(f"改地址 OB1 {address}") == ParsedCommand("address", ("OB1", address), f"改地址 OB1 {address}")
    assert isinstance(parse("打包 OB1 " + "S" * 64), ParsedCommand)


def test_a_message_past_a_limit_is_answered_not_dispatched() -> None:
    msg = InboundMessage("wecom", "wh1", "text", text="确认 " + "1" * 25, message_id="m1")
    cmd = command_for(msg)
    assert isinstance(cmd, Answer) and cmd.text == "异常编号太长（最多 9 个字符）。"


def test_a_scanned_code_past_its_limit_is_answered() -> None:
    msg = InboundMessage("wecom", "wh1", "scan", scan_result="CODE_128," + "S" * 300, message_id="m1")
    cmd = command_for(msg)
    assert isinstance(cmd, Answer) and cmd.text == "单号太长（最多 64 个字符）。"
    odd = command_for(InboundMessage("wecom", "wh1", "scan", scan_result="QR_CODE,OB1'; --", message_id="m2"))
    assert isinstance(odd, Answer) and "单号格式不对" in odd.text


# ---- any text at all

FORMS = [form for spec in COMMANDS.typed for form in spec.forms]
ARGUMENT_LIKE = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="0123456789٣三９²#", max_size=30),
    st.text(alphabet="ABCSFOabc-_.0123456789", min_size=50, max_size=600),
    st.text(min_size=400, max_size=6000),
)
CHAT_TEXT = st.one_of(
    st.text(max_size=300),
    st.tuples(st.sampled_from(FORMS), st.lists(ARGUMENT_LIKE, max_size=4), st.sampled_from([" ", "　", "", "\n", "，"]))
    .map(lambda t: t[0] + t[2] + t[2].join(t[1])),
)


def _within_limits(spec_name: str, args: tuple[str, ...]) -> None:
    spec = COMMANDS[spec_name]
    assert len(args) <= len(spec.args)
    for declared, value in zip(spec.args, args, strict=False):
        if declared.optional and value == "":
            continue  # not given
        assert declared.limit.problem(value) is None, (declared.name, value[:40])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CHAT_TEXT)
def test_any_text_is_a_command_within_its_limits_or_a_parse_error(text: str) -> None:
    result = parse(text)
    assert isinstance(result, ParsedCommand | ParseError)
    if isinstance(result, ParsedCommand):
        _within_limits(result.verb, result.args)
    else:
        assert result.message and len(result.message) < 600


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CHAT_TEXT, st.sampled_from(["text", "scan", "card_click", "enter"]))
def test_any_message_becomes_a_command_whose_arguments_fit_their_columns(text: str, kind: str) -> None:
    msg = InboundMessage("wecom", "wh1", kind, text=text, scan_result=text, message_id="m1")
    cmd = command_for(msg)
    assert isinstance(cmd, ChatCommand)
    if isinstance(cmd, Answer):
        assert cmd.text
        return
    _within_limits(cmd.spec.name, cmd.arguments)
    entity, entity_id = cmd.subject()  # what the audit row of a refusal stores
    assert limits.USERID.problem(entity_id) is None or entity == "user"
