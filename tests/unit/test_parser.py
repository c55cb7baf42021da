from __future__ import annotations

import unicodedata

import pytest

from bot.parser import ParsedCommand, ParseError, parse
from domain.chat_commands import COMMANDS, help_text

VERBS = COMMANDS.typed
USAGE = {spec.name: spec.usage for spec in VERBS}

HINT = "发送“帮助”查看全部命令。"


def cmd(verb: str, *args: str) -> tuple[str, tuple[str, ...]]:
    return verb, args


def missing(verb: str, label: str) -> ParseError:
    return ParseError("missing_argument", f"缺少{label}。用法：{USAGE[verb]}", verb=verb)


def unknown(said: str, usage: str | None = None, suggestion: str | None = None) -> ParseError:
    maybe = f"您是不是要：{usage}？" if usage else ""
    return ParseError("unknown", f"没看懂“{said}”。{maybe}{HINT}", suggestion=suggestion)


EVERY_VERB = [
    ("查询 OB00000012", cmd("status", "OB00000012")),
    ("status OB00000012", cmd("status", "OB00000012")),
    ("状态 OB00000012", cmd("status", "OB00000012")),
    ("查 OB00000012", cmd("status", "OB00000012")),
    ("拣货 OB00000012", cmd("pick", "OB00000012")),
    ("pick OB00000012", cmd("pick", "OB00000012")),
    ("质检 OB00000012", cmd("check", "OB00000012")),
    ("check OB00000012", cmd("check", "OB00000012")),
    ("打包 OB00000012", cmd("pack", "OB00000012")),
    ("打包 OB00000012 SF1234567890", cmd("pack", "OB00000012", "SF1234567890")),
    ("pack OB00000012 SF1234567890", cmd("pack", "OB00000012", "SF1234567890")),
    ("发货 OB00000012", cmd("ship", "OB00000012")),
    ("发货 OB00000012 SF1234567890", cmd("ship", "OB00000012", "SF1234567890")),
    ("ship OB00000012 SF1234567890", cmd("ship", "OB00000012", "SF1234567890")),
    ("出库 OB00000012", cmd("ship", "OB00000012")),
    (
        "改地址 OB00000012 上海市浦东新区张杨路 500 号",
        cmd("address", "OB00000012", "上海市浦东新区张杨路 500 号"),
    ),
    (
        "address OB00000012 上海市浦东新区张杨路 500 号",
        cmd("address", "OB00000012", "上海市浦东新区张杨路 500 号"),
    ),
    ("确认改签 OB00000012 SF9876543210", cmd("relabel", "OB00000012", "SF9876543210")),
    ("relabel OB00000012 SF9876543210", cmd("relabel", "OB00000012", "SF9876543210")),
    ("确认改签 OB00000012", cmd("relabel", "OB00000012")),  # the new e-waybill is already on the order
    ("重打 OB00000012", cmd("reprint", "OB00000012")),
    ("reprint OB00000012", cmd("reprint", "OB00000012")),
    ("同意 AS000012", cmd("approve", "AS000012")),
    ("approve AS000012", cmd("approve", "AS000012")),
    ("退款同意 AS000012", cmd("approve", "AS000012")),
    ("批准 AS000012", cmd("approve", "AS000012")),
    ("通过 AS000012", cmd("approve", "AS000012")),
    ("拒绝 AS000012", cmd("reject", "AS000012")),
    ("拒绝 AS000012 客户已签收，不符合退款条件", cmd("reject", "AS000012", "客户已签收，不符合退款条件")),
    ("reject AS000012 duplicate request", cmd("reject", "AS000012", "duplicate request")),
    ("驳回 AS000012 重复申请", cmd("reject", "AS000012", "重复申请")),
    ("确认 7", cmd("ack", "7")),
    ("ack 7", cmd("ack", "7")),
    ("解决 7", cmd("resolve", "7")),
    ("解决 7 已补发，客户同意", cmd("resolve", "7", "已补发，客户同意")),
    ("resolve 7 resent", cmd("resolve", "7", "resent")),
    ("解冻 C-4S-01", cmd("release", "C-4S-01")),
    ("库存 BP-001", cmd("stock", "BP-001")),
    ("库存 刹车片 浦东店", cmd("stock", "刹车片", "浦东店")),
    ("stock BP-001 SH01", cmd("stock", "BP-001", "SH01")),
    ("问 浦东店今天还有几单没发？", cmd("ask", "浦东店今天还有几单没发？")),
    ("ask 今天几单", cmd("ask", "今天几单")),
    ("release C-4S-01", cmd("release", "C-4S-01")),
    ("用户 wh1 停用", cmd("user", "wh1", "停用")),
    ("user ZhangSan enable", cmd("user", "ZhangSan", "enable")),
    ("短信 c-4s-01 停发", cmd("sms", "C-4S-01", "停发")),
    ("sms C-4S-01 resume", cmd("sms", "C-4S-01", "resume")),
    ("待办", cmd("tasks")),
    ("tasks", cmd("tasks")),
    ("任务", cmd("tasks")),
    ("异常", cmd("exceptions")),
    ("exceptions", cmd("exceptions")),
    ("概况", cmd("summary")),
    ("summary", cmd("summary")),
    ("帮助", cmd("help")),
    ("help", cmd("help")),
    ("?", cmd("help")),
    ("？", cmd("help")),
    ("菜单", cmd("help")),
    ("帮助 发货", cmd("help", "发货")),
]

TOLERATED = [
    ("STATUS OB00000012", cmd("status", "OB00000012")),
    ("Ship OB00000012", cmd("ship", "OB00000012")),
    ("查询\u3000OB00000012", cmd("status", "OB00000012")),
    ("查询：OB00000012", cmd("status", "OB00000012")),
    ("查询:OB00000012", cmd("status", "OB00000012")),
    ("查询 : OB00000012", cmd("status", "OB00000012")),
    ("status: OB00000012", cmd("status", "OB00000012")),
    ("ｓｔａｔｕｓ　ＯＢ００００００１２", cmd("status", "OB00000012")),
    ("查询ＯＢ００００００１２", cmd("status", "OB00000012")),
    ("发货 OB00000012，SF1234567890", cmd("ship", "OB00000012", "SF1234567890")),
    ("发货 OB00000012、SF1234567890；", cmd("ship", "OB00000012", "SF1234567890")),
    ("@订单助手 查询 OB00000012", cmd("status", "OB00000012")),
    ("@orderbot status OB00000012", cmd("status", "OB00000012")),
    ("@订单助手\u2005@张三\u2005查询 OB00000012", cmd("status", "OB00000012")),
    ("＠订单助手　查询 OB00000012", cmd("status", "OB00000012")),
    ("查询 OB00000012 @订单助手", cmd("status", "OB00000012")),
    ("@订单助手 待办 @张三", cmd("tasks")),
    ("查询OB00000012", cmd("status", "OB00000012")),
    ("查OB00000012", cmd("status", "OB00000012")),
    ("发货OB00000012 SF1234567890", cmd("ship", "OB00000012", "SF1234567890")),
    ("确认改签OB00000012 SF9876543210", cmd("relabel", "OB00000012", "SF9876543210")),
    ("确认7", cmd("ack", "7")),
    ("查询 OB00000012。", cmd("status", "OB00000012")),
    ("查询 OB00000012！", cmd("status", "OB00000012")),
    ("查询 OB00000012.", cmd("status", "OB00000012")),
    ("待办？", cmd("tasks")),
    ("  \n查询 OB00000012\n  ", cmd("status", "OB00000012")),
    ("\t查询\nOB00000012", cmd("status", "OB00000012")),
    ("查询 ob00000012", cmd("status", "OB00000012")),
    ("发货 ob00000012 sf1234567890", cmd("ship", "OB00000012", "SF1234567890")),
    ("同意 as000012", cmd("approve", "AS000012")),
    ("解冻 c-4s-01", cmd("release", "C-4S-01")),
    ("同意 as_000012", cmd("approve", "AS_000012")),
    ("确认 #7", cmd("ack", "7")),
    ("解冻 浦东4S店", cmd("release", "浦东4S店")),
    # Free text keeps its case, its inner spaces and its Chinese punctuation.
    (
        "改地址 ob00000012 上海市浦东新区张杨路 500 号",
        cmd("address", "OB00000012", "上海市浦东新区张杨路 500 号"),
    ),
    (
        "改地址：OB00000012，上海市浦东新区张杨路５００号（近世纪大道）。",
        cmd("address", "OB00000012", "上海市浦东新区张杨路500号（近世纪大道）。"),
    ),
    (
        "@订单助手 改地址OB00000012　上海市 浦东新区\n张杨路 500 号 @张三",
        cmd("address", "OB00000012", "上海市 浦东新区 张杨路 500 号"),
    ),
    ("改地址 OB00000012 Room 5b, Pudong Ave", cmd("address", "OB00000012", "Room 5b, Pudong Ave")),
    ("拒绝 AS000012：已超过七天！", cmd("reject", "AS000012", "已超过七天！")),
    ("拒绝 AS000012 ＳＫＵ不符", cmd("reject", "AS000012", "SKU不符")),
    ("reject as000012 wrong sku", cmd("reject", "AS000012", "wrong sku")),
]


@pytest.mark.parametrize(
    ("text", "expected"), EVERY_VERB + TOLERATED, ids=[t for t, _ in EVERY_VERB + TOLERATED]
)
def test_a_command_becomes_its_verb_and_arguments(text: str, expected: tuple[str, tuple[str, ...]]) -> None:
    verb, args = expected
    assert parse(text) == ParsedCommand(verb=verb, args=args, raw=text)


def test_every_verb_in_the_table_is_exercised_in_chinese_and_english() -> None:
    typed = {text.split()[0].rstrip("？?") for text, _ in EVERY_VERB}
    assert {v.zh for v in VERBS} <= typed
    assert {v.name for v in VERBS} <= typed


REFUSED = [
    ("查询", missing("status", "单号")),
    ("status", missing("status", "单号")),
    ("拣货", missing("pick", "单号")),
    ("质检：", missing("check", "单号")),
    ("打包", missing("pack", "单号")),
    ("发货", missing("ship", "单号")),
    ("@订单助手 发货。", missing("ship", "单号")),
    ("改地址", missing("address", "单号")),
    ("改地址 OB00000012", missing("address", "新地址")),
    ("改地址 OB00000012 。", missing("address", "新地址")),
    ("同意", missing("approve", "售后单号")),
    ("拒绝", missing("reject", "售后单号")),
    ("确认", missing("ack", "异常编号")),
    ("resolve", missing("resolve", "异常编号")),
    ("解冻", missing("release", "客户")),
    (
        "查询 OB00000012 OB00000013",
        ParseError("extra_argument", "多了“OB00000013”。用法：查询 <单号>", verb="status"),
    ),
    ("待办 今天", ParseError("extra_argument", "多了“今天”。用法：待办", verb="tasks")),
    (
        "发货 OB00000012 SF1 SF2",
        ParseError("extra_argument", "多了“SF2”。用法：发货 <单号> [运单号]", verb="ship"),
    ),
    ("发或 OB1", unknown("发或 OB1", "发货 <单号> [运单号]", "发货")),
    ("发或OB1", unknown("发或OB1", "发货 <单号> [运单号]", "发货")),
    ("stauts ob1", unknown("stauts ob1", "查询 <单号>", "查询")),
    ("shipp OB1", unknown("shipp OB1", "发货 <单号> [运单号]", "发货")),
    ("查看 OB1", unknown("查看 OB1", "查询 <单号>", "查询")),
    ("异常处理", unknown("异常处理", "异常", "异常")),
    ("解冻浦东4S店", unknown("解冻浦东4S店", "解冻 <客户>", "解冻")),
    ("statusOB1", unknown("statusOB1", "查询 <单号>", "查询")),
    ("OB00000012", unknown("OB00000012", "查询 OB00000012", "查询")),
    ("ob00000012", unknown("ob00000012", "查询 OB00000012", "查询")),
    ("@订单助手 OB00000012。", unknown("OB00000012。", "查询 OB00000012", "查询")),
    ("你好", unknown("你好")),
    ("谢谢大家辛苦了，今天的订单都处理完了吗？明天见", unknown("谢谢大家辛苦了，今天的订单都处理完了吗？…")),
    ("ｈｅｌｌｏ，ｗｏｒｌｄ", unknown("ｈｅｌｌｏ，ｗｏｒｌｄ", "帮助 [命令]", "帮助")),
    ("早上好", unknown("早上好")),
    ("", ParseError("empty", "请发送命令，例如“查询 OB00000012”。" + HINT)),
    ("  \n\u3000 ", ParseError("empty", "请发送命令，例如“查询 OB00000012”。" + HINT)),
    ("@订单助手", ParseError("empty", "请发送命令，例如“查询 OB00000012”。" + HINT)),
    ("@订单助手\u2005@张三 ", ParseError("empty", "请发送命令，例如“查询 OB00000012”。" + HINT)),
]


@pytest.mark.parametrize(("text", "expected"), REFUSED, ids=[t or "<empty>" for t, _ in REFUSED])
def test_a_message_that_is_not_a_command_gets_a_reason_and_a_way_forward(
    text: str, expected: ParseError
) -> None:
    assert parse(text) == expected


def test_usage_lines_show_required_and_optional_arguments() -> None:
    assert USAGE["ship"] == "发货 <单号> [运单号]"
    assert USAGE["address"] == "改地址 <单号> <新地址>"
    assert USAGE["relabel"] == "确认改签 <单号> [新运单号]"
    assert USAGE["summary"] == "概况"
    assert set(USAGE) == {v.name for v in VERBS}


def display_width(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)


def test_help_lists_every_command_in_chinese_with_its_english_alias_on_short_lines() -> None:
    text = help_text()
    lines = text.splitlines()
    for verb in VERBS:
        at = lines.index(USAGE[verb.name])
        assert lines[at + 1] == f"　{verb.purpose} · {verb.name}"
    assert "发货 <单号> [运单号]\n　扫码出库 · ship\n" in text
    assert max(display_width(line) for line in lines) <= 32
