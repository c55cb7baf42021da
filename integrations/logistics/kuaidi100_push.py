"""Kuaidi100 subscription push (订阅推送): subscribe a waybill once, then Kuaidi100 POSTs every change to us.

Subscribe (POST /poll): form `schema=json`, `param` = JSON {"company", "number", "key", "parameters":
{"callbackurl", "salt", "phone"?, "resultv2"}}. Answers {"result", "returnCode", "message"}: "200" accepted,
"501" already subscribed (fine), "500" server trouble (retry), anything else refused (bad key, balance,
unknown carrier...: retrying will not help).

Callback (POST to our callbackurl): form `param` = JSON {"status", "message", "lastResult": {"state", "nu",
"com", "data": [{"time", "context"}] newest first}} and `sign` = upper-case MD5(param + salt). We answer
{"result": true, "returnCode": "200", "message": "成功"}; anything else makes Kuaidi100 push again later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, replace
from typing import Any

import httpx

from domain.arbitration import CourierReport
from domain.limits import WAYBILL
from integrations.delivery.dispatcher import OutboxRow, PermanentDelivery, RetryableDelivery
from integrations.logistics.kuaidi100 import carrier_for, parse_track

log = logging.getLogger(__name__)
SUBSCRIBE_PATH = "/poll"
CHANNEL, SUBSCRIBE = "courier", "subscribe"  # the outbox channel and kind of a subscription
ACCEPTED = {"200", "501"}  # 501: 重复订阅, the waybill is subscribed already
RETRYABLE = {"500"}
CALLBACK_OK = {"result": True, "returnCode": "200", "message": "成功"}


def callback_sign(param: str, salt: str) -> str:
    return hashlib.md5((param + salt).encode()).hexdigest().upper()


def sign_ok(param: str, sign: str, salt: str) -> bool:
    """Constant-time; with no salt configured nothing can be verified, so nothing is accepted."""
    return bool(salt) and hmac.compare_digest(callback_sign(param, salt).encode(), sign.strip().upper().encode())


class BadPush(ValueError):
    """A signed push we cannot read."""


@dataclass(frozen=True)
class Push:
    carrier: str
    report: CourierReport
    status: str  # Kuaidi100's subscription status: polling | shutdown | abort | updateall
    message: str


MAX_CONTEXT_CHARS = 500  # one courier scan line; real ones are a sentence


def parse_push(param: str) -> Push:
    """A signed push as a Push; BadPush for anything else, however it is malformed (never an exception beside)."""
    try:
        body = json.loads(param)
        last = body["lastResult"]
        waybill = str(last["nu"]).strip()
    except (ValueError, KeyError, TypeError, RecursionError) as err:
        raise BadPush(f"not a Kuaidi100 push: {type(err).__name__}") from err
    if not waybill or WAYBILL.problem(waybill) or not isinstance(last, dict):
        raise BadPush("no waybill number")
    try:
        report = parse_track(waybill, last)  # status NO_TRACK when the push carries no state (an "abort" may not)
    except (AttributeError, KeyError, TypeError, IndexError) as err:
        raise BadPush(f"unreadable track: {type(err).__name__}") from err
    report = replace(report, last_context=_clean(report.last_context, MAX_CONTEXT_CHARS))
    return Push(_clean(str(last.get("com", "")), 32), report, _clean(str(body.get("status", "")), 32),
                _clean(str(body.get("message", "")), MAX_CONTEXT_CHARS))


def _clean(text: str, max_chars: int) -> str:
    """PostgreSQL refuses NUL in text; everything stored is cut to its limit."""
    return text.replace("\x00", "")[:max_chars]


class Kuaidi100Subscriber:
    """Subscribes waybills to push; the callback URL and salt are ours, the key is the Kuaidi100 account's."""

    def __init__(
        self, http: httpx.AsyncClient, *, api_base: str, key: str, callback_url: str, salt: str,
        default_carrier: str = "shunfeng",
    ) -> None:
        self.http = http
        self.url = api_base.rstrip("/") + SUBSCRIBE_PATH
        self.key = key
        self.callback_url = callback_url
        self.salt = salt
        self.default_carrier = default_carrier

    def param(self, waybill: str, phone: str = "") -> str:
        parameters: dict[str, Any] = {"callbackurl": self.callback_url, "salt": self.salt, "resultv2": "1"}
        if phone:
            parameters["phone"] = phone  # SF Express (顺丰) needs the receiver's phone number
        body = {"company": carrier_for(waybill, self.default_carrier), "number": waybill, "key": self.key,
                "parameters": parameters}
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))

    async def subscribe(self, waybill: str, phone: str = "") -> dict[str, Any]:
        resp = await self.http.post(self.url, data={"schema": "json", "param": self.param(waybill, phone)})
        resp.raise_for_status()
        answer: dict[str, Any] = resp.json()
        return answer


class CourierSubscribeSender:
    """Outbox channel "courier", kind "subscribe": payload {"waybill", "order_no", "phone"}."""

    def __init__(self, subscriber: Kuaidi100Subscriber) -> None:
        self.subscriber = subscriber

    async def deliver(self, row: OutboxRow) -> None:
        if row.kind != SUBSCRIBE or not row.payload.get("waybill"):
            raise PermanentDelivery(f"not a courier subscription: {row.kind}")
        try:
            answer = await self.subscriber.subscribe(str(row.payload["waybill"]), str(row.payload.get("phone", "")))
        except httpx.HTTPStatusError as err:
            if err.response.status_code >= 500 or err.response.status_code == 429:
                raise RetryableDelivery(f"kuaidi100 HTTP {err.response.status_code}") from err
            raise PermanentDelivery(f"kuaidi100 HTTP {err.response.status_code}") from err
        except (httpx.HTTPError, ValueError) as err:
            raise RetryableDelivery(f"kuaidi100: {type(err).__name__}: {err}") from err
        code = str(answer.get("returnCode", ""))
        if code in ACCEPTED:
            return
        reason = f"kuaidi100 returnCode {code}: {answer.get('message', '')}"
        if code in RETRYABLE:
            raise RetryableDelivery(reason)
        raise PermanentDelivery(reason)
