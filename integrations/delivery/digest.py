"""The digest's text: one short plain line per merged row, numbered under a header; and the urgent bundle's: each
exception push in full, numbered under its own header, as one markdown message."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from domain.chat import Card, from_payload
from domain.chat_commands import COMMANDS
from integrations.delivery.rows import OutboxRow

DIGEST_MAX_BYTES = 2000  # WeCom text content holds at most 2,048 bytes
BUNDLE_MAX_BYTES = 4000  # WeCom markdown content holds at most 4,096 bytes
LINE_MAX_CHARS = 60


def digest_header(count: int) -> str:
    return f"您有 {count} 条新通知（已合并）："


def bundle_header(count: int) -> str:
    return f"**{count} 条异常待处理**（同时到达，合并为一条发送，请逐条处理）"


def numbered(n: int, line: str) -> str:
    return f"{n}. {line}"


def chat_line(row: OutboxRow) -> str:
    """One digest line for a platform-neutral chat payload (handlers.chat.to_payload)."""
    item = from_payload(row.payload)
    if not isinstance(item, Card):
        return short(plain(item.text))
    head = f"{item.title} — {item.description}" if item.description else item.title
    commands = " / ".join(command_text(button.key) for button in item.buttons)
    return f"{short(head)}（回复：{commands}）" if commands else short(head)


def urgent_item(row: OutboxRow) -> str:
    """An exception push in full, as markdown: a reply's text as it is, a card's title, description, fields and
    what to type for each of its buttons (a bundle has no buttons)."""
    item = from_payload(row.payload)
    if not isinstance(item, Card):
        return item.text
    title = f'<font color="warning">{item.title}</font>' if item.highlight else item.title
    lines = [f"**{title}**", *([item.description] if item.description else [])]
    lines += [f"> {name}：{value}" for name, value in item.fields]
    if item.buttons:
        lines.append("回复：" + " / ".join(command_text(button.key) for button in item.buttons))
    return "\n".join(lines)


def fitting(
    row: OutboxRow, waiting: Sequence[OutboxRow], line: Callable[[OutboxRow], str], header: Callable[[int], str],
    max_bytes: int, separator: str = "\n",
) -> list[OutboxRow]:
    """The waiting rows, in order, that fit in one message after `row`, each as `line` numbered under `header`."""
    taken: list[OutboxRow] = []
    size = len(numbered(1, line(row)).encode())
    for candidate in waiting:
        size += len(separator.encode()) + len(numbered(len(taken) + 2, line(candidate)).encode())
        if len(header(len(taken) + 2).encode()) + len(separator.encode()) + size > max_bytes:
            break
        taken.append(candidate)
    return taken


def command_text(key: str) -> str:
    """A button's command as a person would type it: "approve AS000012" → "同意 AS000012"."""
    return COMMANDS.zh_text(key)


_MARKUP = re.compile(r"\*\*|</?font[^>]*>|^>\s*", re.MULTILINE)


def plain(text: str) -> str:
    """Markdown as plain text, lines joined: the digest is a plain text message."""
    return " ".join(line.strip() for line in _MARKUP.sub("", text).splitlines() if line.strip())


def short(text: str, limit: int = LINE_MAX_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
