"""In-process fake of an order event bus subscriber (purchasing, production, delivery planning): a webhook that
checks each delivery's signature as a real subscriber should, records the events it accepted, and can be told
to be down (503) for a while on a clock the test controls.

Route: POST /events. A delivery whose signature does not verify is 401 and not recorded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from integrations.events import signing
from integrations.fakes.server import FakeServer

PATH = "/events"


@dataclass(frozen=True)
class Delivery:
    event: dict[str, Any]  # the envelope: id, type, order_no, at, actor, via, data
    headers: dict[str, str]


class FakeSubscriber(FakeServer):
    def __init__(self, secret: str, *, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.secret = secret
        self._clock = clock  # what "down for a minute" is measured on
        self._wall_clock = wall_clock  # what the signature's timestamp is checked against
        self.deliveries: list[Delivery] = []  # every accepted delivery, re-sends included
        self.refused_signatures = 0
        self.turned_away = 0  # deliveries answered 503 while down
        self._down_until: float | None = None
        self._path_failures = {}
        self._path_stalls = {}
        self.app = web.Application(middlewares=[self.injected_trouble])
        self.app.router.add_post(PATH, self._receive)

    @property
    def url(self) -> str:
        return self.base_url + PATH

    def down_for(self, seconds: float) -> None:
        self._down_until = self._clock() + seconds

    def down(self) -> None:
        self._down_until = float("inf")

    def up(self) -> None:
        self._down_until = None

    @property
    def is_down(self) -> bool:
        return self._down_until is not None and self._clock() < self._down_until

    async def _receive(self, request: web.Request) -> web.Response:
        if self.is_down:
            self.turned_away += 1
            return web.Response(status=503, text="down")
        body = await request.read()
        if not signing.verify(self.secret, dict(request.headers), body, now=self._wall_clock()):
            self.refused_signatures += 1
            return web.json_response({"error": "bad signature"}, status=401)
        self.deliveries.append(Delivery(json.loads(body), dict(request.headers)))
        return web.json_response({"ok": True})

    @property
    def events(self) -> list[dict[str, Any]]:
        """Each event once, in the order first received (a subscriber de-duplicates on the id)."""
        seen: dict[int, dict[str, Any]] = {}
        for delivery in self.deliveries:
            seen.setdefault(int(delivery.event["id"]), delivery.event)
        return list(seen.values())
