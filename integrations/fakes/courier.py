"""In-process fake of a Kuaidi100-style tracking server: scripted tracks per waybill, recorded queries, failures.

Checks the `sign` like the real one (returnCode 400 on a bad signature) and answers an unknown waybill with
returnCode 500 (查询无结果).

Subscription push too: POST /poll records one subscription per waybill (a repeat answers returnCode 501,
重复订阅; a wrong key 600), and `push(waybill, state, data)` POSTs a signed callback to the subscriber's URL.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from aiohttp import web

from domain.clock import local
from integrations.fakes.server import FakeServer
from integrations.logistics.kuaidi100 import QUERY_PATH, sign
from integrations.logistics.kuaidi100_push import SUBSCRIBE_PATH, callback_sign


@dataclass(frozen=True)
class Query:
    com: str
    num: str


@dataclass(frozen=True)
class Subscription:
    company: str
    number: str
    callback_url: str
    salt: str
    phone: str = ""


class FakeCourier(FakeServer):
    def __init__(self, *, customer: str = "fake-customer", key: str = "fake-key") -> None:
        self.customer = customer
        self.key = key
        self.queries: list[Query] = []
        self.tracks: dict[str, dict[str, Any]] = {}
        self.default_state: str | None = None  # answer unknown waybills with this state instead of 500
        self.subscriptions: dict[str, Subscription] = {}  # by waybill, first subscription only
        self.subscribe_requests = 0  # every POST /poll, repeats included
        self._failures: deque[int] = deque()
        self.app = web.Application()
        self.app.router.add_post(QUERY_PATH, self._query)
        self.app.router.add_post(SUBSCRIBE_PATH, self._subscribe)

    # -- test controls -------------------------------------------------------------------------

    def script(self, waybill: str, state: str, *steps: tuple[datetime, str]) -> None:
        """The track of one waybill: its Kuaidi100 state and (time, context) steps, oldest first."""
        data = [{"time": local(at).strftime("%Y-%m-%d %H:%M:%S"), "context": text} for at, text in reversed(steps)]
        self.tracks[waybill] = {"message": "ok", "status": "200", "state": state, "nu": waybill, "data": data}

    def fail_next(self, status: int = 503, times: int = 1) -> None:
        self._failures.extend(status for _ in range(times))

    async def push(
        self, waybill: str, state: str, data: Sequence[tuple[datetime, str]] = (), *, status: str = "polling",
        callback_url: str | None = None, salt: str | None = None, http: httpx.AsyncClient | None = None,
    ) -> httpx.Response:
        """POST a signed callback for a subscribed waybill (steps oldest first, as in `script`); the track
        is scripted too, so a query answers the same. `callback_url`/`salt` override the subscription's."""
        self.script(waybill, state, *data)
        sub = self.subscriptions.get(waybill)
        url = callback_url or (sub.callback_url if sub else None)
        if url is None:
            raise KeyError(f"{waybill} is not subscribed")
        track = self.tracks[waybill]
        last = {"message": "ok", "state": state, "status": "200", "condition": "F00",
                "ischeck": "1" if state == "3" else "0", "com": sub.company if sub else "shunfeng", "nu": waybill,
                "data": [{**step, "ftime": step["time"]} for step in track["data"]]}
        param = json.dumps({"status": status, "billstatus": "got", "message": "", "autoCheck": "0", "comOld": "",
                            "comNew": "", "lastResult": last}, ensure_ascii=False)
        form = {"param": param, "sign": callback_sign(param, salt if salt is not None else (sub.salt if sub else ""))}
        if http is not None:
            return await http.post(url, data=form)
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.post(url, data=form)

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

    async def _subscribe(self, request: web.Request) -> web.Response:
        if self._failures:
            return web.Response(status=self._failures.popleft(), text="fake courier failure")
        form = await request.post()
        self.subscribe_requests += 1
        try:
            body = json.loads(str(form.get("param", "")))
            number, parameters = str(body["number"]), body.get("parameters") or {}
        except (ValueError, KeyError, TypeError):
            return web.json_response({"result": False, "returnCode": "700", "message": "订阅参数错误"})
        if form.get("schema") != "json" or not parameters.get("callbackurl"):
            return web.json_response({"result": False, "returnCode": "700", "message": "订阅参数错误"})
        if body.get("key") != self.key:
            return web.json_response({"result": False, "returnCode": "600", "message": "您不是合法的订阅者"})
        if number in self.subscriptions:
            return web.json_response({"result": False, "returnCode": "501", "message": "POLL:重复订阅"})
        self.subscriptions[number] = Subscription(
            str(body.get("company", "")), number, str(parameters["callbackurl"]), str(parameters.get("salt", "")),
            str(parameters.get("phone", "")),
        )
        return web.json_response({"result": True, "returnCode": "200", "message": "提交成功"})
