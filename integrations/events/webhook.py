"""Signed webhooks: each event is one POST of its JSON envelope to the subscriber's URL (signing.py)."""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Sequence

import httpx

from integrations.db.events import PublishedEvent
from integrations.events import signing, wire
from integrations.events.publisher import DeliveryFailed


class WebhookSubscriber:
    """A 2xx is delivered; anything else (a status, a time-out, a refused connection) is tried again later."""

    def __init__(
        self, name: str, url: str, secret: str, http: httpx.AsyncClient, *, events: Sequence[str] = ("*",),
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ValueError(f"subscriber {name} has no secret: its deliveries could not be verified")
        self.name = name
        self._url = url
        self._secret = secret
        self._http = http
        self._patterns = tuple(events) or ("*",)
        self._wall_clock = wall_clock

    def wants(self, event: PublishedEvent) -> bool:
        return any(fnmatch.fnmatchcase(event.type, pattern) for pattern in self._patterns)

    async def deliver(self, event: PublishedEvent) -> None:
        data = wire.body(event)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            signing.EVENT_ID_HEADER: str(event.id),
            signing.EVENT_TYPE_HEADER: event.type,
            **signing.signed_headers(self._secret, int(self._wall_clock()), data),
        }
        try:
            response = await self._http.post(self._url, content=data, headers=headers)
        except httpx.HTTPError as err:
            raise DeliveryFailed(f"{type(err).__name__}: {err}") from err
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"HTTP {response.status_code}")

    async def close(self) -> None:
        return None
