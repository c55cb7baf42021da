"""The digest's text: one short plain line per merged row, numbered under a header."""

from __future__ import annotations

import re

from domain.chat import Card, from_payload
from domain.chat_commands import COMMANDS
from integrations.delivery.rows import OutboxRow

DIGEST_MAX_BYTES = 2000  # WeCom text content holds at most 2,048 bytes
LINE_MAX_CHARS = 60


def digest_header(count: int) -> str:
    return f"您有 {count} 条新通知（已合并）："


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


def command_text(key: str) -> str:
    """A button's command as a person would type it: "approve AS000012" → "同意 AS000012"."""
    return COMMANDS.zh_text(key)


_MARKUP = re.compile(r"\*\*|</?font[^>]*>|^>\s*", re.MULTILINE)


def plain(text: str) -> str:
    """Markdown as plain text, lines joined: the digest is a plain text message."""
    return " ".join(line.strip() for line in _MARKUP.sub("", text).splitlines() if line.strip())


def short(text: str, limit: int = LINE_MAX_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
