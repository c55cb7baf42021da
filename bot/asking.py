"""The understander kept in step with the data: the names it knows are reloaded from the database now and then."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

from bot.lexicon import Lexicon
from bot.question_words import prepare
from bot.understanding import Understander
from integrations.db.ask_views import AskViews
from integrations.db.engine import Database

log = logging.getLogger(__name__)


class Asking:
    """One per process. `understander()` gives the current one, reloading the names once `refresh_s` has passed."""

    def __init__(self, db: Database, *, store_names: Mapping[str, str] | None = None, refresh_s: float = 60.0,
                 cache_dir: str | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.store_names = dict(store_names or {})
        self.refresh_s = refresh_s
        self.cache_dir = cache_dir
        self.clock = clock
        self._current: Understander | None = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Load the segmenter's dictionary off the event loop, at start-up rather than at the first question."""
        await asyncio.to_thread(prepare, self.cache_dir)

    async def understander(self) -> Understander | None:
        if self._current is not None and self.clock() - self._loaded_at < self.refresh_s:
            return self._current
        async with self._lock:
            if self._current is None or self.clock() - self._loaded_at >= self.refresh_s:
                try:
                    self._current = await self.load()
                    self._loaded_at = self.clock()
                except Exception as err:  # the commands keep working; the old names are kept until the next try
                    log.warning("could not reload the names plain questions use: %s", type(err).__name__)
        return self._current

    async def load(self) -> Understander:
        async with self.db.engine.connect() as conn:
            vocabulary = await AskViews(conn).vocabulary()
        codes = set(vocabulary.store_codes) | set(self.store_names)
        lexicon = Lexicon.build(stores={code: self.store_names.get(code, "") for code in codes},
                                skus=vocabulary.skus, staff=vocabulary.staff, customers=vocabulary.customers)
        if self._current is None:
            await asyncio.to_thread(prepare, self.cache_dir)
        return Understander(lexicon)
