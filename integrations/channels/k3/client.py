"""K3 Cloud (金蝶云星空) WebAPI over httpx: ExecuteBillQuery with either login, and the order counter.

Wire format (read from kingdee-cdp-webapi-sdk 8.2.0, core/webapi_client.py and main.py):
- every call is POST {server_url}/{service}.common.kdsvc with a JSON body; ExecuteBillQuery's body is
  {"data": {"FormId", "FieldKeys" (comma-separated), "FilterString", "OrderString", "TopRowCount", "StartRow",
  "Limit"}} and a success is a JSON array of rows, each an array of the FieldKeys' values in order;
- a refusal still answers HTTP 200, as [[{"Result": {"ResponseStatus": {"ErrorCode", "IsSuccess": false,
  "Errors": [{"FieldName", "Message", "DIndex"}], "MsgCode", ...}}}]] (or the bare {"Result": ...} object);
  a body starting "response_error:" is an error too (the SDK's ValidResult);
- a lost session is that refusal with MsgCode 1 and the message "会话信息已丢失，请重新登录" (ErrorCode 500), as
  K3 deployments report it (e.g. the K3 troubleshooting notes in the `search` code corpus, and MCP K3 clients that
  re-log in on SESSION_LOST_MSG = "会话信息已丢失"). We then log in again ONCE and repeat the call.
- login: in "signed" mode each request carries the SDK's signed X-Api-*/X-Kd-* headers (auth.py) and K3 keeps
  a session cookie we send back; in "session" mode AuthService.LoginByAppSecret answers {"LoginResultType": 1,
  "KDSVCSessionId": ...} and sets the kdservice-sessionid cookie, which every later call carries.
Times in filters and answers are the K3 server's local time (China, no zone).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import httpx

from domain.clock import CST
from integrations.channels.k3.auth import (
    LOGIN_SERVICE,
    SDK_XOR_CODE,
    SESSION_COOKIE,
    Identity,
    login_body,
    signed_headers,
)

log = logging.getLogger(__name__)

QUERY_SERVICE = "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.ExecuteBillQuery"
SESSION_LOST_CODE = 1  # ResponseStatus.MsgCode of "会话信息已丢失，请重新登录"
SESSION_LOST_TEXT = "会话信息已丢失"
SALE_ORDER = "SAL_SaleOrder"
Auth = Literal["signed", "session"]


class K3Error(Exception):
    """K3 answered an error, or did not answer: the pull stops here and the next run starts where it stopped."""


class K3SessionLost(K3Error):
    pass


class K3Refused(K3Error):
    """K3 answered IsSuccess false: `message` is K3's own Errors[].Message text (what finance is shown)."""

    def __init__(self, message: str, error_code: object = None) -> None:
        super().__init__(f"K3 refused: {message[:200]} (ErrorCode {error_code})")
        self.message = message


@dataclass(frozen=True)
class K3Config:
    server_url: str  # e.g. https://erp.example.com/k3cloud/
    identity: Identity
    auth: Auth = "signed"
    xor_code: str = SDK_XOR_CODE
    order_filter: str = "FDocumentStatus = 'C' AND FCancelStatus = 'A'"  # audited, not voided


def k3_time(at: datetime) -> str:
    """A filter literal in the K3 server's local time."""
    return at.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")


def refusal(body: Any) -> dict[str, Any] | None:
    """The ResponseStatus of a refusal, wherever K3 nested it; None for a normal answer."""
    probe = body
    while isinstance(probe, list) and probe:
        probe = probe[0]
    if isinstance(probe, dict) and isinstance(probe.get("Result"), dict):
        status = probe["Result"].get("ResponseStatus")
        if isinstance(status, dict) and status.get("IsSuccess") is False:
            return status
    return None


def _messages(status: dict[str, Any]) -> str:
    errors = status.get("Errors") or []
    return "; ".join(str(e.get("Message") or "") for e in errors if isinstance(e, dict)) or "未知错误"


class K3Client:
    system = "k3"  # integrations.channels.OrderCounter

    def __init__(self, http: httpx.AsyncClient, cfg: K3Config, clock: Callable[[], float] = time.time) -> None:
        self.http, self.cfg, self.clock = http, cfg, clock
        self.base = cfg.server_url.rstrip("/") + "/"
        self.session_id = ""  # kdservice-sessionid, from the login (session mode) or K3's cookie (signed mode)
        self.logins = 0

    # -- calls ---------------------------------------------------------------------------------

    async def bill_query(self, form_id: str, field_keys: Sequence[str], *, filter_string: str = "",
                         order_string: str = "", start_row: int = 0, limit: int = 0) -> list[list[Any]]:
        data = {"FormId": form_id, "FieldKeys": ",".join(field_keys), "FilterString": filter_string,
                "OrderString": order_string, "TopRowCount": 0, "StartRow": start_row, "Limit": limit}
        body = await self.call(QUERY_SERVICE, {"data": data})
        if not isinstance(body, list) or any(not isinstance(row, list) for row in body):
            raise K3Error(f"ExecuteBillQuery answered no rows: {str(body)[:200]}")
        return body

    async def call(self, service: str, payload: dict[str, Any]) -> Any:
        """One service call; a lost session logs in again once and repeats the call."""
        if self.cfg.auth == "session" and not self.session_id:
            await self.login()
        try:
            return await self._post(service, payload)
        except K3SessionLost:
            log.info("K3: session lost, logging in again")
            self.session_id = ""
            if self.cfg.auth == "session":
                await self.login()
            return await self._post(service, payload)

    async def login(self) -> None:
        url = self.base + LOGIN_SERVICE + ".common.kdsvc"
        try:
            resp = await self.http.post(url, json=login_body(self.cfg.identity))
        except httpx.HTTPError as err:
            raise K3Error(f"K3 login failed: {type(err).__name__}") from err
        self.logins += 1
        if resp.status_code != 200:
            raise K3Error(f"K3 login answered HTTP {resp.status_code}")
        try:
            body = resp.json()
        except ValueError as err:
            raise K3Error("K3 login answered no JSON") from err
        if not isinstance(body, dict) or body.get("LoginResultType") != 1:
            message = body.get("Message") if isinstance(body, dict) else None
            raise K3Error(f"K3 login refused: {message or '未知原因'}")
        self.session_id = resp.cookies.get(SESSION_COOKIE) or str(body.get("KDSVCSessionId") or "")
        if not self.session_id:
            raise K3Error("K3 login gave no session")

    async def _post(self, service: str, payload: dict[str, Any]) -> Any:
        url = self.base + service + ".common.kdsvc"
        headers = {"Content-Type": "application/json", "Accept-Charset": "utf-8"}
        if self.cfg.auth == "signed":
            headers.update(signed_headers(url, self.cfg.identity, self.clock(), self.cfg.xor_code))
        if self.session_id:
            headers[SESSION_COOKIE] = self.session_id
            headers["Cookie"] = f"{SESSION_COOKIE}={self.session_id}"
        try:
            resp = await self.http.post(url, content=json.dumps(payload, ensure_ascii=False).encode(), headers=headers)
        except httpx.HTTPError as err:
            raise K3Error(f"K3 {service.rsplit('.', 1)[-1]}: {type(err).__name__}") from err
        if resp.status_code not in (200, 206):
            raise K3Error(f"K3 {service.rsplit('.', 1)[-1]}: HTTP {resp.status_code}")
        if SESSION_COOKIE in resp.cookies:
            self.session_id = resp.cookies[SESSION_COOKIE]
        text = resp.text
        if text.startswith("response_error:"):
            raise K3Error(f"K3: {text.removeprefix('response_error:').strip()[:200] or '空错误'}")
        try:
            body = json.loads(text)
        except ValueError as err:
            raise K3Error("K3 answered no JSON") from err
        status = refusal(body)
        if status is not None:
            message = _messages(status)
            if status.get("MsgCode") == SESSION_LOST_CODE or SESSION_LOST_TEXT in message:
                raise K3SessionLost(message)
            raise K3Refused(message, status.get("ErrorCode"))
        return body

    # -- the consistency score -----------------------------------------------------------------

    def _created_between(self, start: datetime, end: datetime) -> str:
        return (f"{self.cfg.order_filter} AND FCreateDate >= '{k3_time(start)}' "
                f"AND FCreateDate < '{k3_time(end)}'")

    async def order_ids(self, start: datetime, end: datetime, page: int = 5000) -> set[str]:
        """The sales orders (bill numbers) created in [start, end), as K3 itself holds them."""
        ids: set[str] = set()
        row = 0
        while True:
            rows = await self.bill_query(SALE_ORDER, ["FBillNo"], filter_string=self._created_between(start, end),
                                         order_string="FBillNo ASC", start_row=row, limit=page)
            ids.update(str(r[0]) for r in rows if r)
            row += len(rows)
            if len(rows) < page:
                return ids

    async def count_orders(self, start: datetime, end: datetime) -> int:
        return len(await self.order_ids(start, end))
