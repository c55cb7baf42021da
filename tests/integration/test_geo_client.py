"""The Amap client against the fake Amap server over real HTTP: accepted, refused, and unverified when Amap fails."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest

from integrations.fakes.geo import DEFAULT_KEY, FakeAmap
from integrations.geo import UNVERIFIED
from integrations.geo.amap import AmapGeocoder, geo_http

TIMEOUT_S = 0.3  # the stalled-Amap test's time-out; the others allow a loaded machine's slow first call
EASY_TIMEOUT_S = 10.0


@pytest.fixture
async def amap() -> AsyncIterator[FakeAmap]:
    async with FakeAmap() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with geo_http(EASY_TIMEOUT_S) as client:
        yield client


def geocoder(http: httpx.AsyncClient, amap: FakeAmap, key: str = DEFAULT_KEY) -> AmapGeocoder:
    return AmapGeocoder(http, api_base=amap.base_url + "/", key=key)


async def test_a_street_and_number_is_accepted(http: httpx.AsyncClient, amap: FakeAmap) -> None:
    check = await geocoder(http, amap).validate("上海市浦东新区张杨路500号")
    assert (check.ok, check.level, check.formatted, check.reason) == (True, "门牌号", "上海市浦东新区张杨路500号", "")
    assert amap.queries == ["上海市浦东新区张杨路500号"]


async def test_a_road_needs_the_number_in_the_text(http: httpx.AsyncClient, amap: FakeAmap) -> None:
    assert (await geocoder(http, amap).validate("上海市徐汇区漕溪北路88号")).ok
    check = await geocoder(http, amap).validate("上海市徐汇区漕溪北路")
    assert (check.ok, check.level) == (False, "道路")


async def test_the_vague_address_of_the_case_is_refused_with_a_reason(http: httpx.AsyncClient, amap: FakeAmap) -> None:
    check = await geocoder(http, amap).validate("浦东某小区")
    assert (check.ok, check.level, check.unverified) == (False, "区县", False)
    assert "只能定位到区县（上海市浦东新区）" in check.reason


async def test_an_address_amap_does_not_know_is_refused(http: httpx.AsyncClient, amap: FakeAmap) -> None:
    check = await geocoder(http, amap).validate("火星某小区")
    assert (check.ok, check.level) == (False, "")
    assert check.reason.startswith("地图上找不到地址「火星某小区」")


async def test_a_time_out_leaves_the_address_unverified(amap: FakeAmap) -> None:
    amap.stall_next(TIMEOUT_S * 5)
    started = time.perf_counter()
    async with geo_http(TIMEOUT_S) as short:
        check = await geocoder(short, amap).validate("浦东某小区")
    assert time.perf_counter() - started < TIMEOUT_S * 3  # the change is not held for the stalled Amap
    assert (check.ok, check.level, check.unverified) == (True, UNVERIFIED, True)
    assert "超时" in check.reason


@pytest.mark.parametrize("status", [500, 503])
async def test_a_server_error_leaves_the_address_unverified(
    http: httpx.AsyncClient, amap: FakeAmap, status: int
) -> None:
    amap.fail_next(status)
    check = await geocoder(http, amap).validate("浦东某小区")
    assert (check.ok, check.unverified, check.reason) == (True, True, f"地图服务暂时无法核验地址（HTTP {status}）")
    assert (await geocoder(http, amap).validate("浦东某小区")).ok is False  # the next call is judged again


async def test_an_amap_quota_or_key_error_leaves_the_address_unverified(
    http: httpx.AsyncClient, amap: FakeAmap
) -> None:
    amap.refuse_next("DAILY_QUERY_OVER_LIMIT", "10003")
    assert (await geocoder(http, amap).validate("浦东某小区")).unverified
    check = await geocoder(http, amap, key="wrong-key").validate("浦东某小区")
    assert check.unverified and "INVALID_USER_KEY 10001" in check.reason


async def test_amap_unreachable_leaves_the_address_unverified(http: httpx.AsyncClient) -> None:
    async with FakeAmap() as gone:
        base = gone.base_url
    check = await AmapGeocoder(http, api_base=base, key=DEFAULT_KEY).validate("浦东某小区")
    assert check.unverified
