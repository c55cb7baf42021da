"""The outbox's retry policy (time, not attempts) and the per-channel breaker, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from integrations.delivery.retry import CircuitBreaker, RetryPolicy

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_back_off_grows_is_capped_and_keeps_at_least_half() -> None:
    policy = RetryPolicy(base_s=1, cap_s=300)
    assert [policy.delay_s(n, rand=lambda: 0.0) for n in range(4)] == [0.5, 1, 2, 4]
    assert [policy.delay_s(n, rand=lambda: 1.0) for n in range(4)] == [1, 2, 4, 8]
    assert policy.delay_s(40, rand=lambda: 1.0) == 300 and policy.delay_s(40, rand=lambda: 0.0) == 150


def test_a_row_is_given_up_when_its_window_has_passed_not_after_so_many_attempts() -> None:
    policy = RetryPolicy(window_s=6 * 3600)
    assert not policy.gives_up(T0, attempts=500, now=T0 + timedelta(hours=5, minutes=59))
    assert policy.gives_up(T0, attempts=1, now=T0 + timedelta(hours=6))
    assert RetryPolicy(max_attempts=3).gives_up(T0, attempts=3, now=T0)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_the_breaker_opens_after_failures_in_a_row_probes_once_and_closes_on_success() -> None:
    clock = Clock()
    breaker = CircuitBreaker("chat", threshold=3, cool_s=5, max_cool_s=20, clock=clock)
    assert [breaker.failed(n, "HTTP 503") for n in (1, 2)] == [False, False]
    breaker.succeeded(3)  # a success in between: the count starts again
    assert [breaker.failed(n, "HTTP 503") for n in (4, 5, 6)] == [False, False, True]
    assert not breaker.closed and not breaker.admits(7) and not breaker.probe_wanted()

    clock.now += timedelta(seconds=5)
    assert breaker.probe_wanted() and breaker.admits(8) and not breaker.admits(9)  # one probe at a time
    assert breaker.failed(8, "HTTP 503")  # still down: longer cool-down (doubled, with up to 20 % jitter)
    clock.now += timedelta(seconds=9)
    assert not breaker.admits(10)
    clock.now += timedelta(seconds=3)
    assert breaker.admits(10)
    assert breaker.succeeded(10) and breaker.closed and breaker.admits(11)
