"""TokenKeeper on its own: one fetch for concurrent callers, refetch once on refusal, replacement before expiry."""

from __future__ import annotations

import asyncio

import pytest

from integrations.tokens import TOKEN_REFRESH_MARGIN_S, MemoryTokenCache, TokenKeeper

KEY = "corp:1000002"
LIFETIME_S = 7200.0


class Refused(Exception):
    """What a platform call raises when the token it carried was refused."""


class Clock:
    def __init__(self, now: float = 1_760_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Platform:
    """Issues numbered tokens (slowly enough that concurrent callers overlap) and accepts only the newest."""

    def __init__(self) -> None:
        self.fetches = 0
        self.valid: str | None = None
        self.used: list[str] = []

    async def fetch(self) -> tuple[str, float]:
        await asyncio.sleep(0.01)
        self.fetches += 1
        self.valid = f"token-{self.fetches}"
        return self.valid, LIFETIME_S

    async def send(self, token: str) -> str:
        await asyncio.sleep(0)
        if token != self.valid:
            raise Refused(token)
        self.used.append(token)
        return "ok"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def platform() -> Platform:
    return Platform()


def keeper(platform: Platform, clock: Clock, cache: MemoryTokenCache | None = None) -> TokenKeeper:
    return TokenKeeper(cache or MemoryTokenCache(), KEY, platform.fetch, refused=Refused, clock=clock)


async def test_concurrent_callers_share_one_fetch(platform: Platform, clock: Clock) -> None:
    tokens = keeper(platform, clock)
    answers = await asyncio.gather(*(tokens.call(platform.send) for _ in range(20)))
    assert answers == ["ok"] * 20
    assert platform.fetches == 1
    assert platform.used == ["token-1"] * 20


async def test_a_refused_token_is_refetched_once_and_the_call_repeated(platform: Platform, clock: Clock) -> None:
    tokens = keeper(platform, clock)
    await tokens.call(platform.send)
    platform.valid = "revoked-by-the-platform"
    assert await tokens.call(platform.send) == "ok"
    assert platform.fetches == 2
    assert platform.used == ["token-1", "token-2"]


async def test_concurrent_refusals_share_one_refetch(platform: Platform, clock: Clock) -> None:
    tokens = keeper(platform, clock)
    await tokens.call(platform.send)
    platform.valid = "revoked-by-the-platform"
    await asyncio.gather(*(tokens.call(platform.send) for _ in range(10)))
    assert platform.fetches == 2
    assert platform.used == ["token-1"] + ["token-2"] * 10


async def test_a_fresh_token_refused_again_propagates_without_a_loop(clock: Clock) -> None:
    fetched: list[int] = []

    async def fetch() -> tuple[str, float]:
        fetched.append(1)
        return f"t{len(fetched)}", LIFETIME_S

    async def always_refused(token: str) -> str:
        raise Refused(token)

    tokens = TokenKeeper(MemoryTokenCache(), KEY, fetch, refused=Refused, clock=clock)
    with pytest.raises(Refused):
        await tokens.call(always_refused)
    assert len(fetched) == 2


async def test_other_errors_are_not_taken_for_a_refusal(platform: Platform, clock: Clock) -> None:
    async def broken(token: str) -> str:
        raise ConnectionError(token)

    with pytest.raises(ConnectionError):
        await keeper(platform, clock).call(broken)
    assert platform.fetches == 1


async def test_a_token_is_replaced_within_the_margin_before_it_expires(platform: Platform, clock: Clock) -> None:
    tokens = keeper(platform, clock)
    await tokens.call(platform.send)
    clock.now += LIFETIME_S - TOKEN_REFRESH_MARGIN_S - 1
    await tokens.call(platform.send)
    assert platform.fetches == 1
    clock.now += 2
    await tokens.call(platform.send)
    assert platform.fetches == 2
    assert platform.used == ["token-1", "token-1", "token-2"]


async def test_the_store_is_read_once_then_memory_serves(platform: Platform, clock: Clock) -> None:
    class CountingCache(MemoryTokenCache):
        reads = 0

        async def get(self, key: str) -> tuple[str, float] | None:
            self.reads += 1
            return await super().get(key)

    cache = CountingCache()
    tokens = keeper(platform, clock, cache)
    for _ in range(5):
        await tokens.call(platform.send)
    assert cache.reads == 1


async def test_after_a_refusal_another_replicas_newer_token_is_taken_from_the_store(
    platform: Platform, clock: Clock
) -> None:
    shared = MemoryTokenCache()
    first, second = keeper(platform, clock, shared), keeper(platform, clock, shared)
    await first.call(platform.send)
    await second.call(platform.send)  # reads the first's token from the store
    assert platform.fetches == 1

    platform.valid = "revoked-by-the-platform"
    await second.call(platform.send)  # refused: fetches token-2 and stores it
    await first.call(platform.send)  # refused: takes token-2 from the store instead of fetching
    assert platform.fetches == 2
    assert platform.used == ["token-1", "token-1", "token-2", "token-2"]
