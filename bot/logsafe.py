"""Log lines that cannot leak a secret or be forged.

- httpx and httpcore log every request URL (WeCom's `gettoken?corpsecret=…`, `message/send?access_token=…`) at
  INFO and DEBUG, aiosqlite and SQLAlchemy every SQL statement with its parameters (the stored access token):
  they are held at WARNING whatever the level of the rest.
- Every line is redacted before it is written: the configured secrets by value, and tokens, secrets, keys and
  signatures by shape (query parameters, JSON fields, bearer tokens, URL passwords), so a token that reaches
  a message some other way (an exception text that names a URL) is masked too.
- Control characters in a message (a newline in an order number) are escaped, and the continuation lines of a
  traceback are indented, so nothing a sender controls can start a line that looks like a record of its own.
- Each line of work names its inbound message and order (domain/log_context.py): `[msg=… order=…]` at the end of
  a text line, `message_id`/`order_no` fields of a JSON line (LOG_FORMAT=json, python-json-logger).
- `transitions` logs every state change at INFO: it is held at WARNING unless LOG_LEVELS names it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import IO, Any

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, SecretStr
from pythonjsonlogger.json import JsonFormatter

from config.settings import Settings
from domain import log_context

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "***"
# httpx/httpcore log URLs with tokens in their query; aiosqlite and SQLAlchemy's engine log SQL with its
# parameters (the stored access tokens, customers' phones and addresses) as soon as DEBUG/INFO is on.
QUIET_LOGGERS = ("httpx", "httpcore", "hpack", "aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool")
# Chatty libraries held at WARNING unless LOG_LEVELS names them (`transitions` logs every state change at INFO).
CHATTY_LOGGERS = ("transitions",)
MIN_SECRET_CHARS = 4  # shorter configured values are too common as text to mask by value

_SECRET_FIELD = re.compile(r"secret|token|key|salt|password", re.IGNORECASE)
_SHAPES = (
    (re.compile(r"(?i)([?&](?:access_token|corpsecret|secret|appsecret|app_secret|key|sign|signature"
                r"|msg_signature|token|salt|password|t)=)[^&\s\"'#]+"), r"\1" + MASK),  # t: a dashboard link
    (re.compile(r"(?i)(\"(?:access_?token|accessToken|corpsecret|app_?secret|appSecret|secret|token|salt|key)\""
                r"\s*:\s*\")[^\"]*\""), r"\1" + MASK + '"'),
    (re.compile(r"(?i)((?:access_?token|corpsecret|app_?secret|secret)['\"]?\s*[:=]\s*['\"]?)"
                r"[A-Za-z0-9_\-.~+/]{6,}"), r"\1" + MASK),
    (re.compile(r"(?i)(Bearer\s+)\S+"), r"\1" + MASK),
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+@"), r"\1" + MASK + "@"),
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_controls(text: str) -> str:
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}"), text)


def configured_secrets(settings: BaseModel) -> list[str]:
    """Every non-empty string setting whose name says it is a secret, token, key, salt or password."""
    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, BaseModel):
            found += configured_secrets(value)
        elif isinstance(value, dict):
            found += [s for item in value.values() if isinstance(item, BaseModel) for s in configured_secrets(item)]
        elif isinstance(value, SecretStr) and len(value.get_secret_value()) >= MIN_SECRET_CHARS:
            found.append(value.get_secret_value())
        elif isinstance(value, str) and _SECRET_FIELD.search(name) and len(value) >= MIN_SECRET_CHARS:
            found.append(value)
    password = _url_password(getattr(settings, "database_url", None))
    return found + ([password] if password and len(password) >= MIN_SECRET_CHARS else [])


def _url_password(url: object) -> str | None:
    if not isinstance(url, str):
        return None
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).password  # type: ignore[return-value]
    except Exception:
        return None


def _context_suffix() -> str:
    found = log_context.current()
    if not found:
        return ""
    names = {"message_id": "msg", "order_no": "order"}
    return " [" + " ".join(f"{names[k]}={v}" for k, v in found.items()) + "]"


class SafeFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[str] = (), fmt: str = FORMAT) -> None:
        super().__init__(fmt)
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        for pattern, replacement in _SHAPES:
            text = pattern.sub(replacement, text)
        return text

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        return escape_controls(super().formatMessage(record) + _context_suffix())

    def format(self, record: logging.LogRecord) -> str:
        head, sep, tail = super().format(record).partition("\n")
        # The traceback (or stack) after the first line: every line indented, so none can pass for a record.
        return self.redact(head + (sep + "    " + tail.replace("\n", "\n    ") if sep else ""))


class SafeJsonFormatter(JsonFormatter):
    """One JSON object a line: timestamp, level, logger, message, the work's message_id/order_no, and the
    traceback as a field; every string redacted like the text lines (JSON escapes the control characters)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s", json_ensure_ascii=False,
                         rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})
        self._redactor = SafeFormatter(secrets)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data.update(log_context.current())

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {key: self._redactor.redact(value) if isinstance(value, str) else value
                for key, value in log_data.items()}


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (as logging's last resort does), not the one at set-up."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


@web.middleware
async def work_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An HTTP request about an order (…/orders/{order_no}…) names it on every line it logs."""
    order_no = request.match_info.get("order_no")
    with log_context.about(order_no=order_no[:64] if order_no else None):
        return await handler(request)


def configure_logging(settings: Settings, *, level: int | str | None = None,
                      stream: IO[str] | None = None) -> logging.Handler:
    """One handler on the root logger with the safe formatter; the URL-logging libraries held at WARNING."""
    resolved = logging.getLevelName(str(level or settings.log_level).upper()) if not isinstance(level, int) else level
    if not isinstance(resolved, int):
        resolved = logging.INFO
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h.formatter, (SafeFormatter, SafeJsonFormatter))]:
        root.removeHandler(old)
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    secrets = configured_secrets(settings)
    handler.setFormatter(SafeJsonFormatter(secrets) if settings.log_format == "json" else SafeFormatter(secrets))
    root.addHandler(handler)
    root.setLevel(resolved)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, resolved))
    for name, named_level in settings.log_levels.items():
        if name not in QUIET_LOGGERS:  # the URL- and SQL-logging ones never go below WARNING
            logging.getLogger(name).setLevel(named_level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, resolved))
    return handler
