"""In-process fake of Cainiao LINK's e-waybill gateway (TMS_WAYBILL_GET, TMS_WAYBILL_DISCARD), speaking its wire
format: an urlencoded form with msg_type, logistic_provider_id, logistics_interface (JSON) and data_digest.

Checks like the real one: an unknown logistic_provider_id, then the digest (errorCode S02 "digist sign check not
pass"). Issues one waybillCode per objectId + trade order number and gives the same one again for a repeated
request; `printData` is an encrypted-looking JSON document. Records every request (`requests`), the numbers it
issued (`issued`) and discarded (`discarded`). Trouble on demand: `fail_next(code)` (a {"success": false} answer),
`fail_next(status=503)`, `stall_next(seconds)` (late, unprocessed), `lose_next(seconds)` (processed — the number is
taken — but answered too late for the client: the time-out a retry must survive without a second number).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from integrations.fakes.server import ErrorOrStatus, FakeServer
from integrations.waybills.cainiao import DISCARD, GET, data_digest

PATH = "/gateway/link.do"
MESSAGES = {"S02": "验签或加密失败:digist sign check not pass", "S01": "系统错误",
            "ADDRESS_ILLEGAL": "收件人地址不合法", "NO_BALANCE": "电子面单余额不足"}


@dataclass(frozen=True)
class LinkRequest:
    msg_type: str
    content: dict[str, Any]
    to_code: str = ""


def _refuse(code: str, message: str = "") -> web.Response:
    return web.json_response({"success": False, "errorCode": code, "errorMsg": message or MESSAGES.get(code, code)})


class FakeCainiao(FakeServer):
    def __init__(self, *, provider_id: str = "fake-cp-resource", secret: str = "fake-link-secret",
                 prefix: str = "YT") -> None:
        self.provider_id = provider_id
        self.secret = secret
        self.prefix = prefix
        self.requests: list[LinkRequest] = []  # accepted (signed) requests
        self.refusals: list[str] = []  # errorCode of each refused one
        self.issued: dict[tuple[str, tuple[str, ...]], str] = {}  # (objectId, tradeOrderList) → waybillCode
        self.discarded: list[str] = []
        self._lost: deque[float] = deque()
        self._path_failures: dict[str, deque[ErrorOrStatus]] = {}
        self._path_stalls: dict[str, deque[float]] = {}
        self.app = web.Application(middlewares=[self.injected_trouble])
        self.app.router.add_post(PATH, self._link)

    @property
    def api_base(self) -> str:
        return self.base_url + PATH

    def fail_next(self, code: str | None = None, *, status: int | None = None, times: int = 1) -> None:
        if code is None and status is None:
            raise ValueError("give a code or a status")
        failure = ErrorOrStatus(code, status, _refuse, "fake Cainiao failure")
        self._path_failures.setdefault(PATH, deque()).extend(failure for _ in range(times))

    def stall_next(self, seconds: float, times: int = 1) -> None:
        self._queue_stall(seconds, times, PATH)

    def lose_next(self, seconds: float, times: int = 1) -> None:
        self._lost.extend(seconds for _ in range(times))

    def waybills(self) -> list[str]:
        return list(self.issued.values())

    async def _link(self, request: web.Request) -> web.Response:
        form = await request.post()
        msg_type, content = str(form.get("msg_type", "")), str(form.get("logistics_interface", ""))
        if form.get("logistic_provider_id") != self.provider_id:
            self.refusals.append("S03")
            return _refuse("S03", "logistic_provider_id not exist")
        if form.get("data_digest") != data_digest(content, self.secret):
            self.refusals.append("S02")
            return _refuse("S02")
        try:
            body = json.loads(content)
        except ValueError:
            self.refusals.append("S05")
            return _refuse("S05", "logistics_interface is not JSON")
        self.requests.append(LinkRequest(msg_type, body, str(form.get("to_code", ""))))
        if msg_type == GET:
            answer = self._get(body)
        elif msg_type == DISCARD:
            answer = self._discard(body)
        else:
            answer = _refuse("S04", f"msg_type {msg_type} not supported")
        if self._lost:
            await asyncio.sleep(self._lost.popleft())
        return answer

    def _get(self, body: dict[str, Any]) -> web.Response:
        answers = []
        for trade in body.get("tradeOrderInfoDtos") or []:
            recipient = trade.get("recipient") or {}
            if not (recipient.get("address") or {}).get("detail"):
                return _refuse("ADDRESS_ILLEGAL")
            key = (str(trade.get("objectId")), tuple(trade.get("orderInfo", {}).get("tradeOrderList") or ()))
            code = self.issued.setdefault(key, f"{self.prefix}{len(self.issued) + 1:013d}")
            secret = base64.b64encode(json.dumps({"waybillCode": code, "recipient": recipient},
                                                 ensure_ascii=False).encode()).decode()
            print_data = json.dumps({"encryptedData": secret, "signature": "fake-signature",
                                     "templateURL": trade.get("templateUrl") or "http://cloudprint.cainiao.com/template/standard/101",
                                     "ver": "waybill_print_secret_version_1"})
            answers.append({"objectId": trade.get("objectId"), "waybillCode": code, "printData": print_data})
        return web.json_response({"success": "true", "waybillCloudPrintResponseList": answers})

    def _discard(self, body: dict[str, Any]) -> web.Response:
        code = str(body.get("waybillCode", ""))
        if code not in self.issued.values():
            return _refuse("WAYBILL_NOT_EXIST", f"面单号 {code} 不存在")
        if code in self.discarded:
            return _refuse("WAYBILL_ALREADY_DISCARD", f"面单号 {code} 已回收")
        self.discarded.append(code)
        return web.json_response({"success": "true", "discardResult": "true"})
