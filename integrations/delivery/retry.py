"""When a failed send is tried again, when it is given up, and a breaker per channel that pauses a channel that
is down.

The budget is time, not attempts: a row is retried for `window_s` after it was committed (default 6 h, longer
than any WeCom or DingTalk outage we plan for), with capped exponential back-off and jitter in between. The
breaker is what keeps an outage from costing anything: after `threshold` failures in a row a channel is left
alone for a cool-down (growing up to `max_cool_s`), then one probe row tries it; while it is open no row of the
channel is sent, so none is retried, none spends its window on attempts that cannot work, and the log says
"down" once and "back" once instead of once per row.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    window_s: float = 6 * 3600  # retried this long after the row was committed; then a failure is final
    base_s: float = 1.0
    cap_s: float = 300.0
    max_attempts: int | None = None  # an optional cap on attempts as well (None: the window alone decides)

    def delay_s(self, attempts: int, rand: Callable[[], float] = random.random) -> float:
        """Back-off before the next try after `attempts` earlier failures: half of min(cap, base·2^attempts),
        plus a random part up to the other half (so replicas that failed together do not retry together)."""
        ceiling = min(self.cap_s, self.base_s * 2 ** min(attempts, 32))
        return ceiling / 2 + rand() * ceiling / 2

    def gives_up(self, created_at: datetime, attempts: int, now: datetime) -> bool:
        """True when a failure now is final: the window has passed, or the optional attempt cap is reached."""
        if self.max_attempts is not None and attempts >= self.max_attempts:
            return True
        return now >= created_at + timedelta(seconds=self.window_s)


class CircuitBreaker:
    """One channel's breaker: closed (sends flow), open (none until the cool-down ends), then one probe.

    In-process: each replica keeps its own, which is enough to stop that replica hammering a dead channel.
    """

    def __init__(
        self,
        channel: str,
        *,
        threshold: int = 10,
        cool_s: float = 5.0,
        max_cool_s: float = 60.0,
        clock: Callable[[], datetime],
    ) -> None:
        self.channel = channel
        self._threshold = max(1, threshold)
        self._first_cool_s = cool_s
        self._max_cool_s = max(cool_s, max_cool_s)
        self._clock = clock
        self._failures = 0  # in a row
        self._open_until: datetime | None = None
        self._opened_at: datetime | None = None
        self._cool_s = cool_s
        self._probe: int | None = None  # the row id trying the channel while half-open

    @property
    def closed(self) -> bool:
        return self._open_until is None

    def probe_wanted(self) -> bool:
        """Open, cooled down, and no probe out: one row may try the channel now."""
        return self._open_until is not None and self._probe is None and self._clock() >= self._open_until

    def admits(self, row_id: int) -> bool:
        """May this row be sent now? While open only the probe may; the first row asking after the cool-down
        becomes the probe."""
        if self._open_until is None or self._probe == row_id:
            return True
        if self._probe is None and self._clock() >= self._open_until:
            self._probe = row_id
            return True
        return False

    def succeeded(self, row_id: int) -> bool:
        """The channel answered. Returns True when this closes an open breaker."""
        self._failures = 0
        if self._open_until is None:
            return False
        down_s = (self._clock() - (self._opened_at or self._clock())).total_seconds()
        log.warning("channel %s is back after %.0f s; sending again", self.channel, down_s)
        self._open_until = self._opened_at = self._probe = None
        self._cool_s = self._first_cool_s
        return True

    def neutral(self, row_id: int) -> None:
        """The row ended without talking to the channel (rate limit, merged elsewhere): free the probe slot."""
        if self._probe == row_id:
            self._probe = None

    def failed(self, row_id: int, error: str) -> bool:
        """The channel failed this row. Returns True while the breaker is open (or opens now): the failure says
        nothing about the row, so it should not back off on its own."""
        now = self._clock()
        if self._open_until is not None:
            if self._probe == row_id:  # the probe failed: stay open, longer
                self._probe = None
                self._cool_s = min(self._max_cool_s, self._cool_s * 2)
                self._open_until = now + timedelta(seconds=self._cool_s * (1 + random.uniform(0, 0.2)))
                log.debug("channel %s still down (%s); next try in %.0f s", self.channel, error, self._cool_s)
            return True
        self._failures += 1
        if self._failures < self._threshold:
            return False
        self._opened_at = now
        self._open_until = now + timedelta(seconds=self._cool_s)
        log.warning(
            "channel %s looks down (%d failures in a row, last: %s); pausing its sends, trying again in %.0f s",
            self.channel, self._failures, error, self._cool_s,
        )
        return True
