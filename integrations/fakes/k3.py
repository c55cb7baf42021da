"""In-process fake of K3 Cloud's WebAPI: ExecuteBillQuery on SAL_SaleOrder and AuthService.LoginByAppSecret,
checking the signed headers of the current SDK (or the session cookie) like the real one; and the books
(AR_receivable Save/Submit/Audit/ExecuteBillQuery, `fake.books`, integrations/fakes/k3_books.py) behind the same login.

It answers as K3 does: rows as arrays of the FieldKeys' values; a refusal as HTTP 200 with
[[{"Result": {"ResponseStatus": {...}}}]]; a lost session with MsgCode 1 "会话信息已丢失，请重新登录".
It understands the filters orderbot sends (conditions joined by AND: field op 'value') and the order strings.
Tell it to fail: `fail_next("session_lost" | "error" | "http" | "response_error")`, `stall_next(seconds)`,
`lose_sessions()`.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from integrations.channels.k3.auth import (
    LOGIN_SERVICE,
    SESSION_COOKIE,
    api_signature,
    decode_app_secret,
    encode_app_secret,
    hmac_b64,
)
from integrations.channels.k3.client import QUERY_SERVICE
from integrations.fakes.k3_books import AUDIT_PATH, FORM, SAVE_PATH, SUBMIT_PATH, FakeBooks
from integrations.fakes.server import FakeServer

HEADER_FIELDS = {"FBillNo", "FModifyDate", "FCreateDate", "FDocumentStatus", "FCancelStatus", "FCustId.FNumber",
                 "FCustId.FName", "FReceiveAddress", "FLinkMan", "FLinkPhone", "FDate"}
DATE_FIELDS = {"FModifyDate", "FCreateDate", "FDate"}
_CONDITION = re.compile(r"^\s*([A-Za-z][\w.]*)\s*(>=|<=|=|<|>)\s*'([^']*)'\s*$")
QUERY_PATH = f"/{QUERY_SERVICE}.common.kdsvc"
BAD_KEY = "授权密钥校验失败，请获取最新密钥加密"
SESSION_LOST = "会话信息已丢失，请重新登录"


def status(message: str, *, code: int = 500, msg_code: int = 0) -> list[list[dict[str, Any]]]:
    return [[{"Result": {"ResponseStatus": {
        "ErrorCode": code, "IsSuccess": False, "Errors": [{"FieldName": None, "Message": message, "DIndex": 0}],
        "SuccessEntitys": [], "SuccessMessages": [], "MsgCode": msg_code}}}]]


@dataclass(frozen=True)
class Trouble:
    kind: str  # session_lost | error | http | response_error

    def response(self) -> web.Response:
        if self.kind == "session_lost":
            return web.json_response(status(SESSION_LOST, msg_code=1))
        if self.kind == "error":
            return web.json_response(status("字段FModifyDate不存在或已禁用", msg_code=9))
        if self.kind == "response_error":
            return web.Response(text="response_error: 服务器繁忙")
        return web.Response(status=500, text="Internal Server Error")


@dataclass
class Bill:
    header: dict[str, Any]
    lines: list[dict[str, Any]] = field(default_factory=list)


def k3_stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


class FakeK3(FakeServer):
    def __init__(self, *, acct_id: str = "6600a1", username: str = "orderbot", client_id: str = "301451",
                 client_secret: str = "", app_secret: str = "fake-app-secret-0123456789abcdef",
                 lcid: int = 2052, org_num: int = 0, clock_skew_s: float = 600) -> None:
        self.acct_id, self.username, self.lcid, self.org_num = acct_id, username, lcid, org_num
        self.client_secret = client_secret or base64.b64encode(b"fake-k3-client-secret-24").decode()
        self.app_id = f"{client_id}_{encode_app_secret(self.client_secret)}"  # what the K3 console hands out
        assert decode_app_secret(self.app_id.partition("_")[2]) == self.client_secret
        self.app_secret = app_secret
        self.clock_skew_s = clock_skew_s
        self.bills: dict[str, Bill] = {}
        self.sessions: set[str] = set()
        self.logins = 0
        self.queries: list[dict[str, Any]] = []  # each ExecuteBillQuery's data, answered or not
        self.refused: list[str] = []  # why requests were refused
        self._failures: deque[Trouble] = deque()
        self.books = FakeBooks()
        self._path_failures = {QUERY_PATH: self._failures}
        self._path_stalls = {}
        self.app = web.Application(middlewares=[self.injected_trouble])
        self.app.router.add_post("/k3cloud" + QUERY_PATH, self._query)
        for path, op in ((SAVE_PATH, self.books.save), (SUBMIT_PATH, self.books.submit),
                         (AUDIT_PATH, self.books.audit)):
            self.app.router.add_post("/k3cloud" + path, self._form_call(op))
        self.app.router.add_post("/k3cloud/" + LOGIN_SERVICE + ".common.kdsvc", self._login)

    @property
    def server_url(self) -> str:
        return self.base_url + "/k3cloud/"

    # -- test controls -------------------------------------------------------------------------

    def add_bill(self, bill_no: str, *, modified: datetime, created: datetime | None = None,
                 customer: tuple[str, str] = ("CUST-0001", "上海驰骋汽修厂"), address: str = "上海市闵行区七莘路100号",
                 phone: str = "13900000000", lines: tuple[tuple[str, Any, Any, str], ...] = (("BP-001", 2, 199.0, "刹车片"),),
                 document_status: str = "C", cancel_status: str = "A") -> None:
        """A sales order; a later call with the same number replaces it (as a modification does)."""
        header = {"FBillNo": bill_no, "FModifyDate": k3_stamp(modified), "FCreateDate": k3_stamp(created or modified),
                  "FDate": k3_stamp(created or modified), "FDocumentStatus": document_status,
                  "FCancelStatus": cancel_status, "FCustId.FNumber": customer[0], "FCustId.FName": customer[1],
                  "FReceiveAddress": address, "FLinkMan": customer[1], "FLinkPhone": phone}
        self.bills[bill_no] = Bill(header, [
            {"FMaterialId.FNumber": sku, "FMaterialId.FName": name, "FQty": qty, "FTaxPrice": price}
            for sku, qty, price, name in lines
        ])

    def fail_next(self, kind: str = "error", times: int = 1) -> None:
        self._failures.extend(Trouble(kind) for _ in range(times))

    def stall_next(self, seconds: float, times: int = 1, path: str = QUERY_PATH) -> None:
        self._queue_stall(seconds, times, path)

    def fail_books_next(self, kind: str = "http", times: int = 1, path: str = SAVE_PATH) -> None:
        """Trouble before the books call is handled (nothing saved): "http", "response_error", "session_lost"."""
        self._path_failures.setdefault(path, deque()).extend(Trouble(kind) for _ in range(times))

    def lose_sessions(self) -> None:
        """Every session K3 gave is gone (an application-pool recycle)."""
        self.sessions.clear()

    # -- wire ----------------------------------------------------------------------------------

    async def _login(self, request: web.Request) -> web.Response:
        body = await request.json()
        params = body.get("parameters") if isinstance(body, dict) else None
        expected = [self.acct_id, self.username, self.app_id, self.app_secret, self.lcid]
        if params != expected:
            self.refused.append("login")
            return web.json_response({"Message": "第三方系统登录授权验证失败", "LoginResultType": 0, "Context": None})
        self.logins += 1
        sid = secrets.token_hex(16)
        self.sessions.add(sid)
        resp = web.json_response({"Message": None, "MessageCode": "CheckPasswordPolicy", "LoginResultType": 1,
                                  "Context": {"UserName": self.username, "DBid": self.acct_id, "SessionId": sid},
                                  "KDSVCSessionId": sid, "IsSuccessByAPI": True})
        resp.set_cookie(SESSION_COOKIE, sid, path="/")
        return resp

    def _signed(self, request: web.Request) -> bool | str:
        """True: good signed headers; False: none sent; a reason: sent and wrong."""
        h = request.headers
        if "X-Kd-Appkey" not in h:
            return False
        try:
            data = base64.b64decode(h.get("X-Kd-Appdata", "")).decode()
        except ValueError:
            return "appdata"
        if h["X-Kd-Appkey"] != self.app_id or data != f"{self.acct_id},{self.username},{self.lcid},{self.org_num}":
            return "appkey/appdata"
        if h.get("X-Kd-Signature") != hmac_b64(self.app_id + data, self.app_secret):
            return "X-Kd-Signature"
        stamp, nonce = h.get("x-api-timestamp", ""), h.get("x-api-nonce", "")
        if h.get("X-Api-ClientID") != self.app_id.partition("_")[0] or h.get("X-Api-Auth-Version") != "2.0":
            return "client id"
        if h.get("X-Api-Signature") != api_signature(str(request.url), nonce, stamp, self.client_secret):
            return "X-Api-Signature"
        return True

    def _session(self, request: web.Request) -> str | web.Response:
        """The caller's session (a new one for good signed headers), or the refusal K3 answers."""
        signed = self._signed(request)
        if isinstance(signed, str):
            self.refused.append(signed)
            return web.json_response(status(BAD_KEY))
        sid = str(request.cookies.get(SESSION_COOKIE) or request.headers.get(SESSION_COOKIE, ""))
        if not signed and sid not in self.sessions:
            self.refused.append("session")
            return web.json_response(status(SESSION_LOST, msg_code=1))
        if signed and sid not in self.sessions:
            sid = secrets.token_hex(16)  # the signed headers log in by themselves: a new session
            self.sessions.add(sid)
        return sid

    def _form_call(self, op: Any) -> Any:
        async def handle(request: web.Request) -> web.Response:
            raw = await request.read()
            sid = self._session(request)
            if isinstance(sid, web.Response):
                return sid
            resp = web.json_response(await op(json.loads(raw)))
            resp.set_cookie(SESSION_COOKIE, sid, path="/")
            return resp

        return handle

    async def _query(self, request: web.Request) -> web.Response:
        raw = await request.read()
        sid = self._session(request)
        if isinstance(sid, web.Response):
            return sid
        data = json.loads(raw)["data"]
        self.queries.append(data)
        try:
            rows = self._rows(data)
        except ValueError as err:
            return web.json_response(status(str(err)))
        resp = web.json_response(rows)
        resp.set_cookie(SESSION_COOKIE, sid, path="/")
        return resp

    def _rows(self, data: dict[str, Any]) -> list[list[Any]]:
        keys = [k.strip() for k in str(data.get("FieldKeys", "")).split(",") if k.strip()]
        conditions = [self._condition(part) for part in re.split(r"\s+AND\s+", data.get("FilterString") or "") if part]
        if data.get("FormId") == FORM:
            return self.books.rows(keys, conditions)
        if data.get("FormId") != "SAL_SaleOrder":
            raise ValueError("业务对象不存在")
        flat: list[dict[str, Any]] = []
        for bill in self.bills.values():
            if all(self._holds(bill.header, cond) for cond in conditions):
                lines = [{}] if all(k in HEADER_FIELDS for k in keys) else bill.lines
                flat.extend({**bill.header, **line} for line in lines)
        for part in reversed([p.strip() for p in str(data.get("OrderString") or "").split(",") if p.strip()]):
            name, _, way = part.partition(" ")
            flat.sort(key=lambda r: str(r.get(name, "")), reverse=way.strip().upper() == "DESC")  # noqa: B023
        start, limit = int(data.get("StartRow") or 0), int(data.get("Limit") or 0)
        picked = flat[start:start + limit] if limit else flat[start:]
        for key in keys:
            if picked and key not in picked[0]:
                raise ValueError(f"字段{key}不存在或已禁用")
        return [[row[k] for k in keys] for row in picked]

    @staticmethod
    def _condition(part: str) -> tuple[str, str, str]:
        match = _CONDITION.match(part)
        if not match:
            raise ValueError(f"过滤条件无法解析：{part}")
        name, op, value = match.groups()
        return name, op, value

    @staticmethod
    def _holds(header: dict[str, Any], cond: tuple[str, str, str]) -> bool:
        name, op, value = cond
        have: Any = header.get(name)
        want: Any = value
        if name in DATE_FIELDS:
            have, want = datetime.fromisoformat(str(have)), datetime.fromisoformat(value.replace(" ", "T"))
        return bool({"=": have == want, ">=": have >= want, "<=": have <= want, "<": have < want,
                     ">": have > want}[op])
