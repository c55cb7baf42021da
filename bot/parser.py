"""Chat command parser: what people type in WeCom or DingTalk becomes a verb and its arguments.

The commands are one table (`domain.chat_commands.COMMANDS`). Each command is matched on a normalised copy of the text
(NFKC: full-width letters, digits, spaces and punctuation become ASCII), while free text such as a
new address or a refusal reason is cut from the message as typed, so its Chinese punctuation stays.

Every argument is checked against its limit (domain/limits.py, through its declaration) here, at the edge:
a value past it becomes a ParseError in one Chinese sentence — the user's answer — and never reaches a
look-up, an audit row or a column that would refuse it.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from domain.chat import InboundMessage
from domain.chat_commands import (
    COMMANDS,
    UPPERCASE,
    ActOnScan,
    Answer,
    Arg,
    AskQuestion,
    ChatCommand,
    CommandSpec,
    StockLookup,
    help_text,
)
from domain.limits import ORDER_NO, QUESTION
from domain.questions import AftersaleStatus, Question, WhereIsOrder

Understand = Callable[[str], Question | None]
ErrorKind = Literal["empty", "unknown", "missing_argument", "extra_argument", "invalid_argument"]


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


_BY_FORM: dict[str, CommandSpec] = {form.lower(): spec for spec in COMMANDS.typed for form in spec.forms}
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
                "missing_argument", f"缺少{arg.label}。用法：{verb.usage}", verb=verb.name
            )
        if arg.rest:
            begin, end = origin[start + pos], origin[start + len(body) - 1] + 1
            value = _free_text(text[begin:end])
            pos = len(body)
        else:
            end = _token_end(body, pos)
            value = _typed_value(arg, body[pos:end])
            pos = end
        problem = arg.problem(value)
        if problem:
            return ParseError("invalid_argument", problem, verb=verb.name)
        args.append(value)

    extra = body[_skip_separators(body, pos) :]
    if extra:
        return ParseError("extra_argument", f"多了“{_clip(extra)}”。用法：{verb.usage}", verb=verb.name)
    return ParsedCommand(verb.name, tuple(args), text)


WELCOME = "您好，我是订单助手。发送“帮助”查看命令，或直接扫快递单/订单条码。"


def command_for(msg: InboundMessage, understand: Understand | None = None) -> ChatCommand:
    """The typed command a platform-neutral message asks for; a message that is none gets its answer.

    With an understander (bot/understanding.py), a text that is no command is read as a plain question
    (AskQuestion); one it cannot read either gets the parser's answer, with the closest command."""
    common = {"by": msg.sender, "via": msg.platform, "message_id": msg.message_id,
              "response_code": msg.card_response_code, "task_id": msg.card_task_id}
    if msg.kind == "enter":
        return Answer(**common, text=WELCOME)
    if msg.kind == "scan":
        code = msg.scan_result.split(",")[-1].strip().upper()  # barcodes arrive as "CODE_128,SF123..."
        problem = ActOnScan.spec.args[0].problem(code)
        return Answer(**common, text=problem) if problem else ActOnScan(**common, order_no=code)
    parsed = parse(msg.text)
    if isinstance(parsed, ParseError):
        if parsed.kind == "unknown" and understand is not None and QUESTION.problem(msg.text) is None:
            question = understand(msg.text)
            # "发或 OB1" is a mistyped action, not a question about OB1: it keeps its suggestion (发货 <单号>)
            mistyped = parsed.suggestion not in (None, "查询") and isinstance(question, WhereIsOrder | AftersaleStatus)
            if question is not None and not mistyped:
                return AskQuestion(**common, text=msg.text, question=question)
        return Answer(**common, text=help_text() if parsed.kind == "empty" else parsed.message)
    command = COMMANDS[parsed.verb].build(parsed.args, **common)
    if understand is not None and isinstance(command, AskQuestion):
        return dataclasses.replace(command, question=understand(command.text))
    if understand is not None and isinstance(command, StockLookup):
        return dataclasses.replace(command, question=understand(f"{command.part} {command.store} 库存"))
    return command


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


def _match_verb(body: str) -> tuple[CommandSpec | None, int]:
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


def _typed_value(arg: Arg, token: str) -> str:
    """An id typed in any case is upper-cased; an 异常编号 may be typed as "#12"."""
    if arg.kind == "incident":
        token = token.removeprefix("#")
    return token.upper() if arg.kind in UPPERCASE and _ID.fullmatch(token) else token


def _skip_separators(body: str, pos: int) -> int:
    while pos < len(body) and body[pos] in _SEPARATORS:
        pos += 1
    return pos


def _token_end(body: str, pos: int) -> int:
    while pos < len(body) and body[pos] not in _SEPARATORS:
        pos += 1
    return pos


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
    if _ID.fullmatch(token) and sum(ch.isdigit() for ch in token) >= 3 and ORDER_NO.problem(token) is None:
        return ParseError(
            "unknown", f"{said}您是不是要：查询 {token.upper()}？{_HELP_HINT}", suggestion="查询"
        )
    word = _leading_word(body).lower()
    close = difflib.get_close_matches(word, [f for f in _BY_FORM if f != "?"], n=1, cutoff=0.5)
    if not close:
        return ParseError("unknown", said + _HELP_HINT)
    verb = _BY_FORM[close[0]]
    return ParseError("unknown", f"{said}您是不是要：{verb.usage}？{_HELP_HINT}", suggestion=verb.zh)
