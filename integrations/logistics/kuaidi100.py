"""Courier tracking through a Kuaidi100-style real-time query: one POST per waybill, many in flight at once.

Wire format (poll/query.do): form fields `customer`, `param` = JSON {"com", "num"}, and
`sign` = upper-case MD5(param + key + customer). The answer is JSON with `state` ("0" in transit,
"1" picked up, "3" signed, "2"/"4"/"6"/"14" trouble, ...) and `data` = [{"time", "context"}], newest first;
an unknown waybill answers {"result": false, "returnCode": "500"}.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import httpx

from domain.arbitration import IN_TRANSIT, NO_TRACK, PICKED_UP, PROBLEM, SIGNED, CourierReport
from domain.clock import CST

log = logging.getLogger(__name__)
QUERY_PATH = "/poll/query.do"

STATES = {
    "0": IN_TRANSIT, "5": IN_TRANSIT, "7": IN_TRANSIT, "8": IN_TRANSIT,  # 在途, 派件, 转投, 清关
    "1": PICKED_UP,  # 揽收
    "3": SIGNED,  # 签收
    "2": PROBLEM, "4": PROBLEM, "6": PROBLEM, "14": PROBLEM,  # 疑难, 退签, 退回, 拒签
}
CARRIER_PREFIXES = (("SF", "shunfeng"), ("JD", "jd"), ("YT", "yuantong"), ("ZTO", "zhongtong"), ("YD", "yunda"))


class CourierTracking(Protocol):
    async def track_many(self, waybills: Sequence[str], *, gate: asyncio.Semaphore) -> dict[str, CourierReport]: ...


def sign(param: str, key: str, customer: str) -> str:
    return hashlib.md5((param + key + customer).encode()).hexdigest().upper()


def carrier_for(waybill: str, default: str) -> str:
    upper = waybill.upper()
    return next((com for prefix, com in CARRIER_PREFIXES if upper.startswith(prefix)), default)


def parse_track(waybill: str, body: dict[str, Any]) -> CourierReport:
    if body.get("result") is False or "state" not in body:
        return CourierReport(waybill, NO_TRACK)
    status = STATES.get(str(body["state"]), IN_TRANSIT)
    data = body.get("data") or []
    last = data[0] if data else {}
    last_at = _cst(last.get("time"))
    signed_at = last_at if status == SIGNED else None
    return CourierReport(waybill, status, signed_at=signed_at, last_at=last_at, last_context=str(last.get("context", "")))


def _cst(text: object) -> datetime | None:
    """Kuaidi100 gives local (China) times without a zone."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST)
    except ValueError:
        return None


class Kuaidi100Client:
    """One shared httpx client; its connection limit and our semaphore bound the requests in flight."""

    def __init__(
        self, http: httpx.AsyncClient, *, api_base: str, customer: str, key: str, default_carrier: str = "shunfeng"
    ) -> None:
        self.http = http
        self.url = api_base.rstrip("/") + QUERY_PATH
        self.customer = customer
        self.key = key
        self.default_carrier = default_carrier

    async def track(self, waybill: str) -> CourierReport:
        param = json.dumps({"com": carrier_for(waybill, self.default_carrier), "num": waybill}, separators=(",", ":"))
        form = {"customer": self.customer, "sign": sign(param, self.key, self.customer), "param": param}
        resp = await self.http.post(self.url, data=form)
        resp.raise_for_status()
        return parse_track(waybill, resp.json())

    async def track_many(self, waybills: Sequence[str], *, gate: asyncio.Semaphore) -> dict[str, CourierReport]:
        """Reports for the waybills that answered; a failed query is left out (the next sweep asks again).

        `gate` bounds the queries in flight across every batch of a sweep.
        """

        async def one(waybill: str) -> CourierReport | None:
            async with gate:
                try:
                    return await self.track(waybill)
                except (httpx.HTTPError, ValueError) as err:
                    log.warning("tracking %s failed: %s", waybill, err)
                    return None

        reports = await asyncio.gather(*(one(w) for w in waybills))
        return {r.waybill: r for r in reports if r is not None}


def courier_http(concurrency: int, timeout_s: float) -> httpx.AsyncClient:
    """The HTTP client a sweep shares: as many pooled connections as queries in flight."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(timeout_s))
