"""Address validation through Amap (高德) geocoding: GET {api_base}/v3/geocode/geo?key=&address=.

The answer is {"status": "1", "count": "1", "geocodes": [{"formatted_address", "level", "street", "number",
"location", ...}]}; status "0" carries `info`/`infocode` (INVALID_USER_KEY 10001, DAILY_QUERY_OVER_LIMIT 10003, ...).
Amap writes an empty field as [] instead of "".

The rule (`judge`), applied to the best (first) match: a courier needs a street and a house number, so
- 门牌号, 门址, 单元号, 楼层, 房间: accepted, Amap found the number itself;
- 兴趣点, 道路, 住宅区, 小巷: accepted only with a house number, in Amap's `number` field or in the text as
  written ("500号", "88弄", "3栋", "5幢", "2座"; "3号线" is a metro line, not a number);
- anything coarser or vaguer (国家, 省, 市, 区县, 开发区, 乡镇, 村庄, 热点商圈, 道路交叉路口, 公交地铁站点, 未知, a
  level Amap adds later) and no match at all (count 0): refused, with a reason naming what was found.
When Amap cannot be asked (time-out, network error, HTTP error, status "0", a body that is not JSON) the
address is neither accepted nor refused but UNVERIFIED: the change goes ahead and customer service checks it.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any

import httpx

from integrations.geo import UNVERIFIED, AddressCheck

log = logging.getLogger(__name__)
GEOCODE_PATH = "/v3/geocode/geo"

EXACT_LEVELS = frozenset({"门牌号", "门址", "单元号", "楼层", "房间"})
NUMBER_LEVELS = frozenset({"兴趣点", "道路", "住宅区", "小巷"})
_HOUSE_NUMBER = re.compile(r"(?:\d+|[一二三四五六七八九十百千零〇两]+)\s*(?:-\s*\d+\s*)?(?:号(?!线)|弄|栋|幢|座)")
EXAMPLE = "如：上海市浦东新区张杨路500号"


def has_house_number(text: str) -> bool:
    return _HOUSE_NUMBER.search(unicodedata.normalize("NFKC", text)) is not None


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""  # Amap sends [] for an empty field


def unverified(why: str) -> AddressCheck:
    return AddressCheck(True, UNVERIFIED, "", f"地图服务暂时无法核验地址（{why}）")


def judge(address: str, body: dict[str, Any]) -> AddressCheck:
    """Amap's answer for `address` → accepted, refused (with the reason) or unverified."""
    if str(body.get("status")) != "1":
        return unverified(f"{_text(body.get('info')) or '未知错误'} {_text(body.get('infocode'))}".strip())
    geocodes = body.get("geocodes") or []
    if not isinstance(geocodes, list) or not geocodes or not isinstance(geocodes[0], dict):
        return AddressCheck(False, "", "", f"地图上找不到地址「{address}」，请写清楚省市区、街道和门牌号（{EXAMPLE}）。")
    best = geocodes[0]
    level, formatted = _text(best.get("level")) or "未知", _text(best.get("formatted_address"))
    found = f"（{formatted}）" if formatted else ""
    if level in EXACT_LEVELS:
        return AddressCheck(True, level, formatted, "")
    if level in NUMBER_LEVELS:
        if _text(best.get("number")) or has_house_number(address):
            return AddressCheck(True, level, formatted, "")
        return AddressCheck(False, level, formatted,
                            f"地址「{address}」只定位到{level}{found}，没有门牌号，请补充到门牌号（{EXAMPLE}）。")
    return AddressCheck(False, level, formatted,
                        f"地址「{address}」只能定位到{level}{found}，缺少街道和门牌号，请补充完整（{EXAMPLE}）。")


class AmapGeocoder:
    """An `AddressValidator`; never raises for the geocoder's troubles, it answers UNVERIFIED instead."""

    def __init__(self, http: httpx.AsyncClient, *, api_base: str, key: str) -> None:
        self.http = http
        self.url = api_base.rstrip("/") + GEOCODE_PATH
        self.key = key

    async def validate(self, address: str) -> AddressCheck:
        try:
            resp = await self.http.get(self.url, params={"key": self.key, "address": address})
            resp.raise_for_status()
            body = resp.json()
        except httpx.TimeoutException:
            check = unverified("超时")
        except httpx.HTTPStatusError as err:
            check = unverified(f"HTTP {err.response.status_code}")
        except httpx.HTTPError as err:
            check = unverified(type(err).__name__)
        except ValueError:
            check = unverified("应答不是 JSON")
        else:
            check = judge(address, body) if isinstance(body, dict) else unverified("应答格式不对")
        if check.unverified:
            log.warning("geocoding %r failed: %s", address, check.reason)
        return check


def geo_http(timeout_s: float) -> httpx.AsyncClient:
    """The geocoder's HTTP client: one time-out for the whole call, so a stalled Amap never holds a change long."""
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout_s))
