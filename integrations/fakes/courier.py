"""In-process fake of a Kuaidi100-style tracking server: scripted tracks per waybill, recorded queries, failures.

Checks the `sign` like the real one (returnCode 400 on a bad signature) and answers an unknown waybill with
returnCode 500 (查询无结果).
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

from aiohttp import web

from domain.clock import local
from integrations.logistics.kuaidi100 import QUERY_PATH, sign


@dataclass(frozen=True)
class Query:
    com: str
    num: str


class FakeCourier:
    def __init__(self, *, customer: str = "fake-customer", key: str = "fake-key") -> None:
        self.customer = customer
        self.key = key
        self.queries: list[Query] = []
        self.tracks: dict[str, dict[str, Any]] = {}
        self.default_state: str | None = None  # answer unknown waybills with this state instead of 500
        self._failures: deque[int] = deque()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self.app = web.Application()
        self.app.router.add_post(QUERY_PATH, self._query)

    # -- test controls -------------------------------------------------------------------------

    def script(self, waybill: str, state: str, *steps: tuple[datetime, str]) -> None:
        """The track of one waybill: its Kuaidi100 state and (time, context) steps, oldest first."""
        data = [{"time": local(at).strftime("%Y-%m-%d %H:%M:%S"), "context": text} for at, text in reversed(steps)]
        self.tracks[waybill] = {"message": "ok", "status": "200", "state": state, "nu": waybill, "data": data}

    def fail_next(self, status: int = 503, times: int = 1) -> None:
        self._failures.extend(status for _ in range(times))

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeCourier is not started")
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024).start()
        self._port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> FakeCourier:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- wire ----------------------------------------------------------------------------------

    async def _query(self, request: web.Request) -> web.Response:
        if self._failures:
            return web.Response(status=self._failures.popleft(), text="fake courier failure")
        form = await request.post()
        param = str(form.get("param", ""))
        if form.get("customer") != self.customer or form.get("sign") != sign(param, self.key, self.customer):
            return web.json_response({"result": False, "returnCode": "400", "message": "签名错误"})
        query = json.loads(param)
        self.queries.append(Query(query["com"], query["num"]))
        track = self.tracks.get(query["num"])
        if track is None and self.default_state is not None:
            track = {"message": "ok", "status": "200", "state": self.default_state, "nu": query["num"], "data": []}
        if track is None:
            return web.json_response({"result": False, "returnCode": "500", "message": "查询无结果，请隔段时间再查"})
        return web.json_response(track)
