"""In-process fake of Aliyun SMS (Dysmsapi 2017-05-25 SendSms), speaking its RPC wire format.

POST / with the urlencoded parameters. Checks like the real service: the AccessKeyId (404
InvalidAccessKeyId.NotFound), the HMAC-SHA1 Signature over the canonical query (400 SignatureDoesNotMatch), a
Timestamp within 15 minutes (400 InvalidTimeStamp.Expired), a SignatureNonce used once (400 SignatureNonceUsed);
then the sign name, the template and its variables, the phone number (isv.* codes in an HTTP 200 answer).
Accepted texts are recorded in `sent`. Trouble on demand: `fail_next(code)` (an isv/isp code answer),
`fail_next(status=503)`, `stall_next(seconds)` (a time-out for a client that gives up sooner).
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import string
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from integrations.fakes.server import FakeServer
from integrations.sms.aliyun import rpc_signature, string_to_sign

PATH = "/"
HOST_ID = "dysmsapi.aliyuncs.com"
MOBILE = re.compile(r"^(\+?86|0086)?1\d{10}$")
MESSAGES = {
    "isv.BUSINESS_LIMIT_CONTROL": "触发分钟级流控Permits:1",
    "isv.MOBILE_NUMBER_ILLEGAL": "非法手机号",
    "isv.SMS_TEMPLATE_ILLEGAL": "该账号下找不到对应模板",
    "isv.SMS_SIGNATURE_ILLEGAL": "该账号下找不到对应签名",
    "isv.TEMPLATE_MISSING_PARAMETERS": "模板变量缺少对应参数值",
    "isv.INVALID_JSON_PARAM": "JSON参数不合法，只接受字符串值",
    "isv.AMOUNT_NOT_ENOUGH": "账户余额不足",
    "isp.SYSTEM_ERROR": "isp.SYSTEM_ERROR",
    "Throttling.User": "Request was denied due to user flow control.",
}


@dataclass(frozen=True)
class SentSms:
    phone: str
    sign_name: str
    template_code: str
    params: dict[str, str]
    out_id: str
    text: str  # the template filled in, as the customer reads it (without the sign)


@dataclass(frozen=True)
class _Failure:
    code: str | None
    status: int | None

    def response(self) -> web.Response:
        if self.status is not None and self.code is None:
            return web.Response(status=self.status, text="fake Aliyun failure")
        assert self.code is not None
        status = self.status or (400 if self.code.startswith("Throttling") else 200)
        return _answer(self.code, MESSAGES.get(self.code, "fake Aliyun error"), status=status)


def _answer(code: str, message: str, *, status: int = 200, **extra: Any) -> web.Response:
    body = {"RequestId": secrets.token_hex(8).upper(), "Code": code, "Message": message, **extra}
    if status != 200:
        body["HostId"] = HOST_ID
    return web.json_response(body, status=status)


class FakeAliyunSms(FakeServer):
    def __init__(
        self, *, access_key_id: str = "fake-key-id", access_key_secret: str = "fake-key-secret",
        sign_name: str = "汽配测试", templates: dict[str, str] | None = None,
    ) -> None:
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.sign_name = sign_name
        self.templates = templates if templates is not None else {}  # code → text with ${name} variables
        self.sent: list[SentSms] = []
        self.requests = 0  # every POST, refused ones included
        self.refusals: list[str] = []  # the Code of each refused request
        self.clock = lambda: datetime.now(UTC)
        self._nonces: set[str] = set()
        self._path_failures: dict[str, deque[_Failure]] = {}
        self._path_stalls: dict[str, deque[float]] = {}
        self.app = web.Application(middlewares=[self.injected_trouble])
        self.app.router.add_post(PATH, self._send_sms)

    # -- test controls -------------------------------------------------------------------------

    def register(self, code: str, text: str) -> None:
        """A template approved at the console, e.g. register("SMS_1", "您的订单${order_no}已发货")."""
        self.templates[code] = text

    def fail_next(self, code: str | None = None, *, status: int | None = None, times: int = 1) -> None:
        """Queue `times` failures: an answer with this Code, or a bare HTTP status."""
        if code is None and status is None:
            raise ValueError("give a code or a status")
        self._path_failures.setdefault(PATH, deque()).extend(_Failure(code, status) for _ in range(times))

    def stall_next(self, seconds: float, times: int = 1) -> None:
        self._queue_stall(seconds, times, PATH)

    # -- wire ----------------------------------------------------------------------------------

    async def _send_sms(self, request: web.Request) -> web.Response:
        self.requests += 1
        form = {k: str(v) for k, v in (await request.post()).items()}
        refusal = self._auth_refusal(form) or self._content_refusal(form)
        if refusal is not None:
            self.refusals.append(json.loads(refusal.text or "{}").get("Code", ""))
            return refusal
        params = json.loads(form.get("TemplateParam") or "{}")
        text = string.Template(self.templates[form["TemplateCode"]]).substitute(params)
        self.sent.append(SentSms(form["PhoneNumbers"], form["SignName"], form["TemplateCode"], params,
                                 form.get("OutId", ""), text))
        return _answer("OK", "OK", BizId=f"{secrets.randbelow(10**15):015d}^0")

    def _auth_refusal(self, form: dict[str, str]) -> web.Response | None:
        if form.get("AccessKeyId") != self.access_key_id:
            return _answer("InvalidAccessKeyId.NotFound", "Specified access key is not found.", status=404)
        given = form.pop("Signature", "")
        expected = rpc_signature(form, self.access_key_secret)
        if (form.get("SignatureMethod"), form.get("SignatureVersion")) != ("HMAC-SHA1", "1.0") or not \
                hmac.compare_digest(given.encode(), expected.encode()):
            return _answer("SignatureDoesNotMatch", "Specified signature is not matched with our calculation. "
                           f"server string to sign is:{string_to_sign(form)}", status=400)
        try:
            at = datetime.strptime(form.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return _answer("InvalidTimeStamp.Format", "Specified time stamp is not valid.", status=400)
        if abs(self.clock() - at) > timedelta(minutes=15):
            return _answer("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.", status=400)
        nonce = form.get("SignatureNonce", "")
        if not nonce or nonce in self._nonces:
            return _answer("SignatureNonceUsed", "Specified signature nonce was used already.", status=400)
        self._nonces.add(nonce)
        if (form.get("Action"), form.get("Version")) != ("SendSms", "2017-05-25"):
            return _answer("InvalidAction.NotFound", "Specified api is not found.", status=404)
        return None

    def _content_refusal(self, form: dict[str, str]) -> web.Response | None:
        if form.get("SignName") != self.sign_name:
            return _answer("isv.SMS_SIGNATURE_ILLEGAL", MESSAGES["isv.SMS_SIGNATURE_ILLEGAL"])
        template = self.templates.get(form.get("TemplateCode", ""))
        if template is None:
            return _answer("isv.SMS_TEMPLATE_ILLEGAL", MESSAGES["isv.SMS_TEMPLATE_ILLEGAL"])
        try:
            params = json.loads(form.get("TemplateParam") or "{}")
        except ValueError:
            params = None
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            return _answer("isv.INVALID_JSON_PARAM", MESSAGES["isv.INVALID_JSON_PARAM"])
        wanted = {m.group(1) for m in re.finditer(r"\$\{(\w+)\}", template)}
        if wanted - set(params):
            return _answer("isv.TEMPLATE_MISSING_PARAMETERS", MESSAGES["isv.TEMPLATE_MISSING_PARAMETERS"])
        if not MOBILE.match(form.get("PhoneNumbers", "")):
            return _answer("isv.MOBILE_NUMBER_ILLEGAL", MESSAGES["isv.MOBILE_NUMBER_ILLEGAL"])
        return None
