"""Times are stored in UTC and shown to people in China Standard Time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

CST = timezone(timedelta(hours=8), "CST")


def utcnow() -> datetime:
    return datetime.now(UTC)


def local(at: datetime) -> datetime:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(CST)


def hhmm(at: datetime | None) -> str:
    return local(at).strftime("%H:%M") if at else ""
