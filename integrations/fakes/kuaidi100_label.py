"""In-process fake of Kuaidi100's e-waybill API (POST /label/order, methods "order" and "cancel"), speaking its wire
format: an urlencoded form with method, key, t, param (JSON) and sign = upper MD5(param + t + key + secret).

Refuses an unknown key or a wrong sign (returnCode 400), answers "order" with a kuaidinum — the same one again for
a repeated orderId — and "cancel" by recording the number. Records `orders` and `cancelled`; trouble on demand with
`fail_next(code)` ({"result": false, "returnCode": code}), `fail_next(status=503)`, `stall_next(seconds)`.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from aiohttp import web

from integrations.fakes.server import ErrorOrStatus, FakeServer
from integrations.waybills.kuaidi100 import LABEL_PATH, sign

MESSAGES = {"500": "服务器错误", "400": "参数错误", "30002": "电子面单余额不足", "30005": "收件地址无法识别"}


def _refuse(code: str, message: str = "") -> web.Response:
    return web.json_response({"result": False, "returnCode": code, "message": message or MESSAGES.get(code, code)})


class FakeKuaidi100Label(FakeServer):
    def __init__(self, *, key: str = "fake-kd100-key", secret: str = "fake-kd100-secret", prefix: str = "YT9") -> None:
        self.key = key
        self.secret = secret
        self.prefix = prefix
        self.orders: list[dict[str, Any]] = []  # every accepted "order" param
        self.numbers: dict[str, str] = {}  # orderId → kuaidinum
        self.cancelled: list[str] = []
        self.refusals: list[str] = []
        self._path_failures: dict[str, deque[ErrorOrStatus]] = {}
        self._path_stalls: dict[str, deque[float]] = {}
        self.app = web.Application(middlewares=[self.injected_trouble])
        self.app.router.add_post(LABEL_PATH, self._label)

    def fail_next(self, code: str | None = None, *, status: int | None = None, times: int = 1) -> None:
        if code is None and status is None:
            raise ValueError("give a code or a status")
        failure = ErrorOrStatus(code, status, _refuse, "fake Kuaidi100 failure")
        self._path_failures.setdefault(LABEL_PATH, deque()).extend(failure for _ in range(times))

    def stall_next(self, seconds: float, times: int = 1) -> None:
        self._queue_stall(seconds, times, LABEL_PATH)

    async def _label(self, request: web.Request) -> web.Response:
        form = await request.post()
        param, t, key = str(form.get("param", "")), str(form.get("t", "")), str(form.get("key", ""))
        method = str(form.get("method") or request.query.get("method", ""))
        if key != self.key or form.get("sign") != sign(param, t, key, self.secret):
            self.refusals.append("400")
            return _refuse("400", "sign错误或key无效")
        body = json.loads(param)
        if method == "order":
            self.orders.append(body)
            number = self.numbers.setdefault(str(body.get("orderId")), f"{self.prefix}{len(self.numbers) + 1:012d}")
            return web.json_response({"result": True, "returnCode": "200", "message": "提交成功", "data": {
                "taskId": f"task-{number}", "kuaidinum": number, "bulkpen": "沪-浦东 021"}})
        if method == "cancel":
            self.cancelled.append(str(body.get("kuaidinum", "")))
            return web.json_response({"result": True, "returnCode": "200", "message": "成功"})
        return _refuse("400", f"method {method} 不支持")
