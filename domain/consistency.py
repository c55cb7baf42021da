"""Cross-system consistency (跨系统一致性): do the orders each channel's own system holds match orderbot's copy?

Score = min ÷ max × 100 over the order counts of the systems compared, for one window (an hour, or a day so far).
Each channel is compared with orderbot's orders of that channel (Douyin and K3 never hold the same orders, so
comparing them with each other would mean nothing); the window's score is its lowest channel score, so one
channel losing orders is never hidden by another channel's volume. With no order anywhere a window scores 100.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.clock import hhmm, local

HOUR, DAY = "hour", "day"
SYSTEM_NAMES = {"k3": "金蝶K3", "douyin": "抖店", "miniprogram": "小程序", "orderbot": "订单助手"}
DROP, RECOVER = "drop", "recover"


def system_name(system: str) -> str:
    return SYSTEM_NAMES.get(system, system)


def ratio(counts: Iterable[int]) -> float:
    """min ÷ max × 100; 100 when every count is 0 (nothing to disagree about)."""
    values = list(counts)
    top = max(values, default=0)
    return 100.0 if top == 0 else min(values) / top * 100


@dataclass(frozen=True)
class Window:
    kind: str  # hour | day
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive

    def label(self) -> str:
        if self.kind == HOUR:
            return f"{local(self.start):%m-%d} {hhmm(self.start)}–{hhmm(self.end)}"
        return f"{local(self.start):%m-%d} 全天（截至 {hhmm(self.end)}）"


def windows_due(now: datetime, lag: timedelta) -> tuple[Window, Window]:
    """The last whole hour that ended at least `lag` ago, and its day (China time) up to that hour's end.

    The lag lets a pull that runs every few minutes bring in the hour's last orders before the hour is scored.
    """
    end = (now - lag).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hour = Window(HOUR, end - timedelta(hours=1), end)
    midnight = local(hour.start).replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    return hour, Window(DAY, midnight, end)


@dataclass(frozen=True)
class SourceCount:
    """What a channel's own system says of one window: how many orders, and which, when it can list them."""

    channel: str
    count: int
    ids: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ChannelTally:
    """One channel's system and orderbot's copy of that channel, in one window."""

    channel: str
    source: int  # orders the channel's own system holds
    orderbot: int  # orders orderbot holds of them
    missing_in_orderbot: tuple[str, ...] = ()  # external ids the channel holds and orderbot lacks (when listed)
    listed: bool = False  # the channel named its orders (so the missing ones are known by id)

    @property
    def score(self) -> float:
        return ratio((self.source, self.orderbot))

    def gap_text(self, shown: int) -> str:
        name = system_name(self.channel)
        counts = f"{name} {self.source} 单，订单助手 {self.orderbot} 单"
        if self.source == self.orderbot:
            return counts
        if self.orderbot > self.source:
            return f"{counts}；{name}少 {self.orderbot - self.source} 单"
        missing = self.source - self.orderbot
        if not self.missing_in_orderbot:
            return f"{counts}；订单助手缺 {missing} 单（{name}只给数量，无单号明细）"
        ids = "、".join(self.missing_in_orderbot[:shown])
        more = f" 等 {missing} 单" if missing > shown else ""
        return f"{counts}；订单助手缺 {missing} 单：{ids}{more}"


@dataclass(frozen=True)
class Consistency:
    window: Window
    tallies: tuple[ChannelTally, ...]

    @property
    def score(self) -> float:
        return min((t.score for t in self.tallies), default=100.0)


def alert_step(previous_low_since: datetime | None, score: float, threshold: float,
               window_start: datetime) -> tuple[datetime | None, str | None]:
    """(since when the score is low — None when it is not —, what to tell): a warning once when it drops below the
    threshold, nothing while it stays low, a note when it is back."""
    if score < threshold:
        if previous_low_since is None:
            return window_start, DROP
        return previous_low_since, None
    return None, (RECOVER if previous_low_since is not None else None)


def warning_text(result: Consistency, threshold: float, shown: int, day_score: float | None) -> str:
    lines = [f'**<font color="warning">跨系统一致性预警</font>** {result.window.label()}',
             f"一致性得分 **{result.score:.1f}%**，低于 {threshold:g}%"]
    lines += [f"> {t.gap_text(shown)}" for t in result.tallies]
    if day_score is not None:
        lines.append(f"今日累计得分 {day_score:.1f}%。")
    lines.append("请核对缺失的订单；恢复后会再通知。发送「概况」查看最新得分。")
    return "\n".join(lines)


def recovery_text(result: Consistency, threshold: float, low_since: datetime) -> str:
    return (f'**<font color="info">跨系统一致性已恢复</font>** {result.window.label()} 得分 {result.score:.1f}%'
            f"（自 {local(low_since):%m-%d %H:%M} 起低于 {threshold:g}%）。")
