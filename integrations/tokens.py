"""One keeper of a platform's access token, shared by the WeCom and DingTalk clients.

WeCom and DingTalk both limit token fetches, and WeCom drops the previous token when a new one is fetched,
so replicas share one token through a store (the `api_tokens` row, integrations.db.tokens.DbTokenCache).
Each keeper serves its token from memory until `margin_s` before it expires, so a send reads nothing;
concurrent callers that find no fresh token wait on one lock, and only the first fetches. When the
platform refuses the token, the keeper forgets it, takes another replica's newer token from the store or
fetches one, and repeats the call once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeGuard, TypeVar

TOKEN_REFRESH_MARGIN_S = 300.0  # a token this close to its expiry is replaced before it is used
DEFAULT_TOKEN_TTL_S = 7200.0  # both platforms' tokens live two hours when the answer does not say

T = TypeVar("T")
TokenFetch = Callable[[], Awaitable[tuple[str, float]]]  # asks the platform: (token, seconds it lives)


class TokenCache(Protocol):
    """Where replicas share their tokens: `expires_at` is epoch seconds."""

    async def get(self, key: str) -> tuple[str, float] | None: ...

    async def put(self, key: str, token: str, expires_at: float) -> None: ...


class MemoryTokenCache:
    """A `TokenCache` for one process (tests, the demo): clients handed the same one share its tokens."""

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, float]] = {}

    async def get(self, key: str) -> tuple[str, float] | None:
        return self._tokens.get(key)

    async def put(self, key: str, token: str, expires_at: float) -> None:
        self._tokens[key] = (token, expires_at)


class TokenKeeper:
    def __init__(
        self,
        cache: TokenCache,
        key: str,
        fetch: TokenFetch,
        *,
        refused: type[Exception],
        clock: Callable[[], float] = time.time,
        margin_s: float = TOKEN_REFRESH_MARGIN_S,
    ) -> None:
        """`refused` is the exception a call raises when the platform refused its token."""
        self._cache = cache
        self._key = key
        self._fetch = fetch
        self._refused = refused
        self._clock = clock
        self._margin_s = margin_s
        self._memory: tuple[str, float] | None = None
        self._lock = asyncio.Lock()

    async def call(self, request: Callable[[str], Awaitable[T]]) -> T:
        """Run `request` with the token; once refused, run it again with a new one (a second refusal propagates)."""
        token = await self.token()
        try:
            return await request(token)
        except self._refused:
            self.forget(token)
        return await request(await self._replace(stale=token))

    async def token(self) -> str:
        if self._memory is not None and self._fresh(self._memory):
            return self._memory[0]
        return await self._replace(stale=self._memory[0] if self._memory else None)

    def forget(self, token: str) -> None:
        """`token` was refused: the next caller reads the store, where another replica may have put a new one."""
        if self._memory is not None and self._memory[0] == token:
            self._memory = None

    async def _replace(self, stale: str | None) -> str:
        """Fetch a token unless someone (another task or replica) already replaced the stale one."""
        async with self._lock:
            if self._replaces(self._memory, stale):
                return self._memory[0]
            stored = await self._cache.get(self._key)
            if self._replaces(stored, stale):
                self._memory = stored
                return stored[0]
            token, lifetime_s = await self._fetch()
            fetched = token, self._clock() + lifetime_s
            await self._cache.put(self._key, *fetched)
            self._memory = fetched
            return token

    def _replaces(self, known: tuple[str, float] | None, stale: str | None) -> TypeGuard[tuple[str, float]]:
        return known is not None and known[0] != stale and self._fresh(known)

    def _fresh(self, known: tuple[str, float]) -> bool:
        return known[1] - self._clock() > self._margin_s
