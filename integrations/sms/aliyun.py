"""Customer texts through Aliyun SMS: SendSms of Dysmsapi (API version 2017-05-25), signed here over httpx.

Followed:
- SendSms (https://help.aliyun.com/document_detail/55284.html): PhoneNumbers, SignName, TemplateCode, TemplateParam
  (a JSON string of the template's variables), OutId (our own reference, echoed in receipts); the answer is JSON
  {"Code", "Message", "BizId", "RequestId"} and Code "OK" means accepted. SendSms is not idempotent (the same page):
  a time-out may have sent the text, and the retry can send it twice; we accept that rather than lose a text.
- Error codes (https://help.aliyun.com/document_detail/101346.html): isv.BUSINESS_LIMIT_CONTROL (flow control),
  Throttling.* and isp.SYSTEM_ERROR may pass later; every other code (isv.MOBILE_NUMBER_ILLEGAL, a template or sign
  not approved, isv.AMOUNT_NOT_ENOUGH, SignatureDoesNotMatch ...) will not, so the row dies at once and is reported.
- The RPC signature (SignatureMethod HMAC-SHA1, SignatureVersion 1.0), as Apache libcloud's Aliyun driver computes
  it (libcloud/common/aliyun.py `_sign_request`): percent-encode (RFC 3986) each name and value, sort by name,
  join with & into the canonical query; StringToSign = "POST&%2F&" + percentEncode(canonical query);
  Signature = base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign)).
  The official SDK (alibabacloud_dysmsapi20170525) does have an async send_sms_async, but it brings the Tea runtime
  and half a dozen alibabacloud_* packages for one signed POST; signing here keeps the dependencies to httpx.
Assumptions, written down: the parameters travel in the urlencoded POST body (not the query string), so the phone
number never appears in a URL that a proxy or httpx logs; a template variable is cut to 35 characters (Aliyun's
limit for a free-text variable in a notification template).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from domain.clock import utcnow
from domain.customers import masked_phone
from domain.quiet_hours import QuietHours
from integrations.db.engine import Database
from integrations.delivery.rows import (
    DeferDelivery,
    OutboxRow,
    PermanentDelivery,
    RetryableDelivery,
    SetAside,
)
from integrations.delivery.set_aside import SKIPPED, UNCONFIGURED
from integrations.sms.outbox import (
    NOT_CONFIGURED_PREFIX,
    OPTED_OUT,
    opted_out,
    record_skip,
)
from integrations.sms.templates import SmsTemplates, template_params

log = logging.getLogger(__name__)

API_VERSION = "2017-05-25"
MAX_PARAM_CHARS = 35
# Codes that say "not now": flow control, throttling, a fault on Aliyun's side. Anything else is final.
RETRY_CODES = frozenset({
    "isv.BUSINESS_LIMIT_CONTROL", "isp.SYSTEM_ERROR", "isp.GATEWAY_ERROR", "ServiceUnavailable", "InternalError",
    "SignatureNonceUsed",  # a nonce that collided: a fresh one passes
})


def percent_encode(value: str) -> str:
    """RFC 3986, as Aliyun's RPC signature wants it: space %20, * %2A, ~ as is."""
    return quote(value, safe="-_.~")


def string_to_sign(params: Mapping[str, str], method: str = "POST") -> str:
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"


def rpc_signature(params: Mapping[str, str], secret: str, method: str = "POST") -> str:
    """The Signature of an RPC request over all its other parameters."""
    digest = hmac.new(f"{secret}&".encode(), string_to_sign(params, method).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def iso_timestamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AliyunSmsError(Exception):
    """An answer other than Code "OK". `retry`: the same request may pass later."""

    def __init__(self, code: str, message: str, *, retry: bool) -> None:
        super().__init__(f"aliyun {code}: {message}")
        self.code, self.message, self.retry = code, message, retry


def is_retry_code(code: str) -> bool:
    return code in RETRY_CODES or code.startswith("Throttling")


class AliyunSmsClient:
    """One signed SendSms per call. The secret is only ever used to sign; it is never logged or put in an error."""

    def __init__(
        self, http: httpx.AsyncClient, *, api_base: str, access_key_id: str, access_key_secret: str, sign_name: str,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._http = http
        self._url = api_base.rstrip("/") + "/"
        self._key_id = access_key_id
        self._secret = access_key_secret
        self.sign_name = sign_name
        self._clock = clock

    def signed_form(self, phone: str, template_code: str, params: Mapping[str, str], out_id: str = "") -> dict[str, str]:
        form = {
            "AccessKeyId": self._key_id, "Action": "SendSms", "Format": "JSON", "RegionId": "cn-hangzhou",
            "SignatureMethod": "HMAC-SHA1", "SignatureNonce": uuid.uuid4().hex, "SignatureVersion": "1.0",
            "Timestamp": iso_timestamp(self._clock()), "Version": API_VERSION,
            "PhoneNumbers": phone, "SignName": self.sign_name, "TemplateCode": template_code,
            "TemplateParam": json.dumps({k: v[:MAX_PARAM_CHARS] for k, v in params.items()}, ensure_ascii=False,
                                        separators=(",", ":")),
        }
        if out_id:
            form["OutId"] = out_id
        form["Signature"] = rpc_signature(form, self._secret)
        return form

    async def send(self, phone: str, template_code: str, params: Mapping[str, str], out_id: str = "") -> str:
        """The BizId of an accepted text. AliyunSmsError for a refusal; httpx errors for the transport."""
        resp = await self._http.post(self._url, data=self.signed_form(phone, template_code, params, out_id))
        body = _json(resp)
        code = str(body.get("Code", "")) if body is not None else ""
        if resp.status_code >= 500 and not code:
            raise AliyunSmsError(f"HTTP {resp.status_code}", resp.reason_phrase, retry=True)
        if not code:
            raise AliyunSmsError(f"HTTP {resp.status_code}", "answer without a Code", retry=resp.status_code == 429)
        if code != "OK":
            raise AliyunSmsError(code, str(body.get("Message", "")) if body else "",
                                 retry=is_retry_code(code) or resp.status_code >= 500)
        return str(body.get("BizId", "")) if body else ""


def _json(resp: httpx.Response) -> dict[str, Any] | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class AliyunSmsSender:
    """Outbox channel "sms": recipient = the phone, kind = what the text tells (picks the template), payload
    {"text", "params", "customer_id", "order_no", "urgent"} (domain/outbox.py CustomerText).

    In order: an opted-out customer's row is set aside as "skipped" (audited); a kind without a template code is
    "unconfigured"; a non-urgent row in quiet hours waits for their end (no attempt counted); then SendSms."""

    def __init__(
        self, client: AliyunSmsClient, db: Database, templates: SmsTemplates, *, quiet: QuietHours | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._client = client
        self._db = db
        self._templates = templates
        self._quiet = quiet or QuietHours()
        self._clock = clock

    async def deliver(self, row: OutboxRow) -> None:
        shown = masked_phone(row.recipient)
        who = await opted_out(self._db, row)
        if who is not None:
            await record_skip(self._db, row, who, self._clock())
            log.info("sms row %s (%s to %s) skipped: the customer opted out", row.id, row.kind, shown)
            raise SetAside(SKIPPED, OPTED_OUT)
        code = self._templates.code_for(row.kind)
        if not code:
            raise SetAside(UNCONFIGURED, f"{NOT_CONFIGURED_PREFIX}no template code for {row.kind}")
        now = self._clock()
        if not row.payload.get("urgent") and self._quiet.quiet(now):
            until = self._quiet.next_allowed(now)
            log.debug("sms row %s to %s held for quiet hours until %s", row.id, shown, until.isoformat())
            raise DeferDelivery(until, "quiet hours")
        try:
            biz_id = await self._client.send(row.recipient, code, template_params(row), out_id=f"ob{row.id}")
        except AliyunSmsError as err:
            log.warning("sms row %s (%s to %s) refused: %s", row.id, row.kind, shown, err)
            raise (RetryableDelivery(str(err)) if err.retry else PermanentDelivery(str(err))) from err
        except (httpx.HTTPError, ValueError) as err:
            raise RetryableDelivery(f"aliyun sms: {type(err).__name__}: {err}") from err
        log.info("sms row %s (%s) sent to %s, BizId %s", row.id, row.kind, shown, biz_id)


class UnconfiguredSms:
    """Channel "sms" when SMS settings are missing: every row is set aside as "unconfigured" at once (counted on
    /metrics as orderbot_outbox_rows{channel="sms",status="unconfigured"}), to be sent once configured."""

    async def deliver(self, row: OutboxRow) -> None:
        raise SetAside(UNCONFIGURED, f"{NOT_CONFIGURED_PREFIX}ORDERBOT_SMS__ACCESS_KEY_ID, ACCESS_KEY_SECRET, SIGN_NAME")
