"""Chat command parser: what people type in WeCom or DingTalk becomes a verb and its arguments.

The verbs are one table (`VERBS`). Each command is matched on a normalised copy of the text
(NFKC: full-width letters, digits, spaces and punctuation become ASCII), while free text such as a
new address or a refusal reason is cut from the message as typed, so its Chinese punctuation stays.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

ErrorKind = Literal["empty", "unknown", "missing_argument", "extra_argument"]


@dataclass(frozen=True)
class Arg:
    label: str  # what the user calls it, e.g. 单号
    optional: bool = False
    rest: bool = False  # free text running to the end of the line (an address, a reason)


@dataclass(frozen=True)
class Verb:
    name: str  # canonical English name, also the English alias
    zh: str  # the Chinese form shown in usage and help
    purpose: str  # one short line for the help reply
    args: tuple[Arg, ...] = ()
    synonyms: tuple[str, ...] = ()  # other words people type for it

    @property
    def forms(self) -> tuple[str, ...]:
        return (self.zh, self.name, *self.synonyms)


@dataclass(frozen=True)
class ParsedCommand:
    verb: str
    args: tuple[str, ...]
    raw: str


@dataclass(frozen=True)
class ParseError:
    kind: ErrorKind
    message: str  # ready to send back to the user
    verb: str | None = None
    suggestion: str | None = None  # Chinese form of the closest command


_ORDER = Arg("单号")
_WAYBILL = Arg("运单号", optional=True)
_AFTERSALE = Arg("售后单号")
_EXCEPTION = Arg("异常编号")

VERBS: tuple[Verb, ...] = (
    Verb("status", "查询", "查订单状态", (_ORDER,), ("状态", "查")),
    Verb("pick", "拣货", "开始拣货", (_ORDER,)),
    Verb("check", "质检", "拣完，送质检", (_ORDER,)),
    Verb("pack", "打包", "打包，可录运单号", (_ORDER, _WAYBILL)),
    Verb("ship", "发货", "扫码出库", (_ORDER, _WAYBILL), ("出库",)),
    Verb("address", "改地址", "改收货地址", (_ORDER, Arg("新地址", rest=True))),
    Verb("relabel", "确认改签", "改址后确认新运单", (_ORDER, Arg("新运单号"))),
    Verb("approve", "同意", "同意售后退款", (_AFTERSALE,), ("退款同意", "批准", "通过")),
    Verb("reject", "拒绝", "拒绝售后退款", (_AFTERSALE, Arg("原因", optional=True, rest=True)), ("驳回",)),
    Verb("ack", "确认", "认领异常", (_EXCEPTION,)),
    Verb("resolve", "解决", "异常已处理", (_EXCEPTION, Arg("说明", optional=True, rest=True))),
    Verb("release", "解冻", "解除客户结算冻结", (Arg("客户"),)),
    Verb("tasks", "待办", "我的待办", (), ("任务",)),
    Verb("exceptions", "异常", "未处理的异常", ()),
    Verb("summary", "概况", "今日概况", ()),
    Verb("help", "帮助", "查看全部命令", (Arg("命令", optional=True, rest=True),), ("?", "菜单")),
)


def _usage(verb: Verb) -> str:
    return " ".join([verb.zh, *(f"[{a.label}]" if a.optional else f"<{a.label}>" for a in verb.args)])


USAGE: dict[str, str] = {v.name: _usage(v) for v in VERBS}

_BY_FORM: dict[str, Verb] = {form.lower(): v for v in VERBS for form in v.forms}
_FORMS_LONGEST_FIRST = sorted(_BY_FORM, key=len, reverse=True)
_SEPARATORS = frozenset(" \t\r\n:,;、。!?.")
_ID = re.compile(r"[A-Za-z0-9_-]+")
_MENTIONS_AHEAD = re.compile(r"\s*(?:@\S*\s*)*")
_MENTIONS_BEHIND = re.compile(r"(?:\s+@\S*)+\s*$")
_HELP_HINT = "发送“帮助”查看全部命令。"


def parse(text: str) -> ParsedCommand | ParseError:
    norm, origin = _normalise(text)
    ahead = _MENTIONS_AHEAD.match(norm)
    start = ahead.end() if ahead else 0
    behind = _MENTIONS_BEHIND.search(norm, start)
    body = norm[start : behind.start() if behind else len(norm)].rstrip()
    if not body:
        return ParseError("empty", "请发送命令，例如“查询 OB00000012”。" + _HELP_HINT)
    verb, pos = _match_verb(body)
    if verb is None:
        return _unknown(body, typed=text[origin[start] : origin[start + len(body) - 1] + 1])

    args: list[str] = []
    for arg in verb.args:
        pos = _skip_separators(body, pos)
        if pos >= len(body):
            if arg.optional:
                break
            return ParseError(
                "missing_argument", f"缺少{arg.label}。用法：{USAGE[verb.name]}", verb=verb.name
            )
        if arg.rest:
            begin, end = origin[start + pos], origin[start + len(body) - 1] + 1
            args.append(_free_text(text[begin:end]))
            pos = len(body)
        else:
            end = _token_end(body, pos)
            args.append(_id_or_word(body[pos:end]))
            pos = end

    extra = body[_skip_separators(body, pos) :]
    if extra:
        return ParseError("extra_argument", f"多了“{_clip(extra)}”。用法：{USAGE[verb.name]}", verb=verb.name)
    return ParsedCommand(verb.name, tuple(args), text)


def help_text() -> str:
    lines = ["可以发这些命令（中文或英文）："]
    for verb in VERBS:  # two short lines each: a phone shows about 16 Chinese characters a line
        lines += [USAGE[verb.name], f"　{verb.purpose} · {verb.name}"]
    lines += ["<> 必填，[] 可不填", "例：查询 OB00000012"]
    return "\n".join(lines)


def _normalise(text: str) -> tuple[str, list[int]]:
    """NFKC each character on its own, remembering where each output character came from."""
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        folded = unicodedata.normalize("NFKC", ch)
        chars.append(folded)
        origin.extend([i] * len(folded))
    return "".join(chars), origin


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff"


def _match_verb(body: str) -> tuple[Verb | None, int]:
    """Longest form first, so 确认改签 wins over 确认 and 查询 over 查."""
    for form in _FORMS_LONGEST_FIRST:
        head = body[: len(form)]
        if head.lower() != form:
            continue
        after = body[len(form) : len(form) + 1]
        # A Chinese verb may run straight into an id ("查询OB1"), never into more Chinese ("查看").
        if not after or after in _SEPARATORS or (_is_cjk(form[-1]) and not _is_cjk(after)):
            return _BY_FORM[form], len(form)
    return None, 0


def _skip_separators(body: str, pos: int) -> int:
    while pos < len(body) and body[pos] in _SEPARATORS:
        pos += 1
    return pos


def _token_end(body: str, pos: int) -> int:
    while pos < len(body) and body[pos] not in _SEPARATORS:
        pos += 1
    return pos


def _id_or_word(token: str) -> str:
    return token.upper() if _ID.fullmatch(token) else token


def _free_text(raw: str) -> str:
    """Full-width letters, digits and spaces fold to ASCII; full-width punctuation stays as typed."""
    kept = "".join(
        ch if "\uff01" <= ch <= "\uff5e" and not ch.isalnum() else unicodedata.normalize("NFKC", ch)
        for ch in raw
    )
    return " ".join(line.strip() for line in kept.splitlines() if line.strip())


def _leading_word(body: str) -> str:
    """The word a verb would be: a run of Chinese, or a token up to the first separator."""
    if _is_cjk(body[0]):
        end = next((i for i, ch in enumerate(body) if not _is_cjk(ch)), len(body))
    else:
        end = _token_end(body, 0)
    return body[:end] or body


def _clip(text: str, limit: int = 20) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _unknown(body: str, typed: str) -> ParseError:
    said = f"没看懂“{_clip(typed)}”。"
    token = body.rstrip("".join(_SEPARATORS))
    if _ID.fullmatch(token) and sum(ch.isdigit() for ch in token) >= 3:
        return ParseError(
            "unknown", f"{said}您是不是要：查询 {token.upper()}？{_HELP_HINT}", suggestion="查询"
        )
    word = _leading_word(body).lower()
    close = difflib.get_close_matches(word, [f for f in _BY_FORM if f != "?"], n=1, cutoff=0.5)
    if not close:
        return ParseError("unknown", said + _HELP_HINT)
    verb = _BY_FORM[close[0]]
    return ParseError("unknown", f"{said}您是不是要：{USAGE[verb.name]}？{_HELP_HINT}", suggestion=verb.zh)
