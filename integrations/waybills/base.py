"""What every e-waybill provider offers the outbox sender, and how it reports a refusal."""

from __future__ import annotations

import re
from typing import Any, Protocol

import httpx

from domain.outbox_systems import WaybillRequest
from domain.waybills import IssuedWaybill


class WaybillError(Exception):
    """The provider refused, in its own words. `retry`: the same request may pass later."""

    def __init__(self, provider: str, code: str, message: str, *, retry: bool) -> None:
        super().__init__(f"{provider} {code}: {message}")
        self.provider, self.code, self.message, self.retry = provider, code, message, retry


def json_answer(resp: httpx.Response, provider: str) -> dict[str, Any]:
    """The provider's answer as a JSON object; a 5xx or 429, or an answer that is not a JSON object, is worth a retry."""
    status = f"HTTP {resp.status_code}"
    if resp.status_code >= 500 or resp.status_code == 429:
        raise WaybillError(provider, status, resp.reason_phrase, retry=True)
    try:
        body = resp.json()
    except ValueError:
        raise WaybillError(provider, status, "answer is not JSON", retry=True) from None
    if not isinstance(body, dict):
        raise WaybillError(provider, status, "answer is not an object", retry=True)
    return body


class WaybillProvider(Protocol):
    name: str

    async def issue(self, request: WaybillRequest) -> IssuedWaybill:
        """The waybill for `request`; the same request_id twice must give the same number (retry after a time-out)."""
        ...

    async def discard(self, waybill: str, request: WaybillRequest) -> None:
        """Void a waybill that must not be used (an address change); an unknown or already void one is no error."""
        ...


_REGION = re.compile(
    r"^(?P<province>北京市|上海市|天津市|重庆市|.+?(?:省|自治区|特别行政区))"
    r"(?P<city>.+?(?:自治州|地区|盟|市))?(?P<district>.+?(?:区|县|旗|市))?(?P<detail>.*)$"
)


def split_address(text: str) -> dict[str, str]:
    """A Chinese address in one line → province, city, district, detail (what Cainiao's AddressDto wants).
    A municipality is its own province and city (上海市 · 上海市); what does not match goes whole into detail."""
    text = text.strip()
    found = _REGION.match(text)
    if not found or not found.group("detail"):
        return {"province": "", "city": "", "district": "", "detail": text}
    province = found.group("province")
    city = found.group("city") or (province if province.endswith("市") else "")
    return {"province": province, "city": city, "district": found.group("district") or "",
            "detail": found.group("detail")}
