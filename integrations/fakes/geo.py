"""In-process fake of the Amap (高德) geocoding API: a table of known addresses, recorded queries, failures.

Speaks GET /v3/geocode/geo?key=&address=: a known address answers count "1" with its level; an unknown one
answers count "0" (or `default_level`, when set); a wrong key answers status "0" INVALID_USER_KEY 10001.
Failures (an HTTP status, an Amap error, a stall longer than the client's time-out) can be queued.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiohttp import web

from integrations.fakes.server import FakeServer
from integrations.geo.amap import GEOCODE_PATH

DEFAULT_KEY = "fake-amap-key"
KNOWN: dict[str, tuple[str, str, str]] = {  # address -> (level, formatted_address, number)
    "上海市浦东新区张杨路500号": ("门牌号", "上海市浦东新区张杨路500号", "500号"),
    "上海市浦东新区世纪大道100号": ("门牌号", "上海市浦东新区世纪大道100号", "100号"),
    "上海市闵行区七莘路100号": ("门牌号", "上海市闵行区七莘路100号", "100号"),
    "上海市徐汇区漕溪北路88号": ("道路", "上海市徐汇区漕溪北路", ""),
    "上海市徐汇区漕溪北路": ("道路", "上海市徐汇区漕溪北路", ""),
    "浦东某小区": ("区县", "上海市浦东新区", ""),
    "上海市浦东新区": ("区县", "上海市浦东新区", ""),
    "上海市浦东新区某小区": ("住宅区", "上海市浦东新区某小区", ""),
}


@dataclass(frozen=True)
class _Trouble:
    status: int | None = None  # a bare HTTP status
    info: tuple[str, str] | None = None  # an Amap error: (info, infocode), HTTP 200
    stall_s: float = 0.0  # answer this late (normally) — past the client's time-out


class FakeAmap(FakeServer):
    def __init__(self, *, key: str = DEFAULT_KEY, known: dict[str, tuple[str, str, str]] | None = None) -> None:
        self.key = key
        self.known = dict(KNOWN if known is None else known)
        self.default_level: str | None = None  # answer unknown addresses with this level instead of count 0
        self.queries: list[str] = []
        self._trouble: deque[_Trouble] = deque()
        self.app = web.Application()
        self.app.router.add_get(GEOCODE_PATH, self._geocode)

    # -- test controls -------------------------------------------------------------------------

    def add(self, address: str, level: str, formatted: str = "", number: str = "") -> None:
        self.known[address] = (level, formatted or address, number)

    def fail_next(self, status: int = 503, times: int = 1) -> None:
        self._trouble.extend(_Trouble(status=status) for _ in range(times))

    def refuse_next(self, info: str = "DAILY_QUERY_OVER_LIMIT", infocode: str = "10003", times: int = 1) -> None:
        self._trouble.extend(_Trouble(info=(info, infocode)) for _ in range(times))

    def stall_next(self, seconds: float, times: int = 1) -> None:
        self._trouble.extend(_Trouble(stall_s=seconds) for _ in range(times))

    # -- wire ----------------------------------------------------------------------------------

    async def _geocode(self, request: web.Request) -> web.Response:
        address = request.query.get("address", "")
        self.queries.append(address)
        trouble = self._trouble.popleft() if self._trouble else None
        if trouble is not None and trouble.stall_s:
            await asyncio.sleep(trouble.stall_s)
        if trouble is not None and trouble.status is not None:
            return web.Response(status=trouble.status, text="fake Amap failure")
        if trouble is not None and trouble.info is not None:
            return _answer("0", trouble.info[0], trouble.info[1])
        if request.query.get("key") != self.key:
            return _answer("0", "INVALID_USER_KEY", "10001")
        if not address:
            return _answer("0", "INVALID_PARAMS", "20000")
        found = self.known.get(address)
        if found is None and self.default_level is not None:
            found = (self.default_level, address, "")
        if found is None:
            return _answer("1", "OK", "10000", [])
        level, formatted, number = found
        return _answer("1", "OK", "10000", [_geocode(formatted, level, number)])


def _answer(status: str, info: str, infocode: str, geocodes: list[dict[str, Any]] | None = None) -> web.Response:
    body: dict[str, Any] = {"status": status, "info": info, "infocode": infocode}
    if geocodes is not None:
        body.update(count=str(len(geocodes)), geocodes=geocodes)
    return web.json_response(body, dumps=partial(json.dumps, ensure_ascii=False))


def _geocode(formatted: str, level: str, number: str) -> dict[str, Any]:
    return {
        "formatted_address": formatted, "country": "中国", "province": "上海市", "citycode": "021",
        "city": "上海市", "district": [], "township": [], "street": [], "number": number or [],
        "adcode": "310115", "location": "121.544346,31.221461", "level": level,
    }
