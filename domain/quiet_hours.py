"""Quiet hours for customer texts: no SMS between 21:00 and 08:00 Beijing time unless urgent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from domain.clock import local


def parse_hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


@dataclass(frozen=True)
class QuietHours:
    start: time = time(21, 0)  # Beijing time; start > end spans midnight
    end: time = time(8, 0)

    @classmethod
    def of(cls, start: str, end: str) -> QuietHours:
        return cls(parse_hhmm(start), parse_hhmm(end))

    def quiet(self, at: datetime) -> bool:
        now = local(at).time()
        if self.start == self.end:
            return False  # no quiet hours
        if self.start < self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end

    def next_allowed(self, at: datetime) -> datetime:
        """`at` itself outside quiet hours; else the end of these quiet hours (the next 08:00), in UTC."""
        if not self.quiet(at):
            return at
        here = local(at)
        end = here.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= here:
            end += timedelta(days=1)
        return end.astimezone(UTC)
