"""The address rule: a courier needs a street and a house number; Amap's match level and the text decide."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.geo import UNVERIFIED
from integrations.geo.amap import has_house_number, judge


def amap(level: str, formatted: str = "", number: object = None) -> dict[str, Any]:
    geocode = {"formatted_address": formatted or "上海市浦东新区", "level": level, "location": "121.5,31.2",
               "street": [], "number": [] if number is None else number}
    return {"status": "1", "info": "OK", "infocode": "10000", "count": "1", "geocodes": [geocode]}


@pytest.mark.parametrize("level", ["门牌号", "门址", "单元号", "楼层", "房间"])
def test_levels_that_carry_the_number_are_accepted(level: str) -> None:
    check = judge("上海市浦东新区张杨路500号", amap(level, "上海市浦东新区张杨路500号"))
    assert (check.ok, check.level, check.reason) == (True, level, "")
    assert check.formatted == "上海市浦东新区张杨路500号" and not check.unverified


@pytest.mark.parametrize("level", ["道路", "兴趣点", "住宅区", "小巷"])
def test_a_road_or_place_is_accepted_with_a_house_number_in_the_text(level: str) -> None:
    assert judge("上海市徐汇区漕溪北路88号", amap(level)).ok
    assert judge("上海市浦东新区某小区3栋", amap(level)).ok
    assert judge("上海市浦东新区锦绣路１２８８弄", amap(level)).ok  # full-width digits


@pytest.mark.parametrize("level", ["道路", "兴趣点", "住宅区"])
def test_a_road_or_place_is_accepted_with_amaps_own_number(level: str) -> None:
    assert judge("漕溪北路口那家汽修", amap(level, number="88号")).ok


@pytest.mark.parametrize("level", ["道路", "兴趣点", "住宅区", "小巷"])
def test_a_road_or_place_without_a_number_is_refused(level: str) -> None:
    check = judge("上海市浦东新区某小区", amap(level, "上海市浦东新区某小区"))
    assert not check.ok and check.level == level
    assert "门牌号" in check.reason and "上海市浦东新区某小区" in check.reason


@pytest.mark.parametrize(
    "level", ["国家", "省", "市", "区县", "开发区", "乡镇", "村庄", "热点商圈", "道路交叉路口", "公交地铁站点", "未知",
              "某个新级别"],
)
def test_anything_coarser_is_refused_even_with_a_number(level: str) -> None:
    check = judge("浦东某小区8号", amap(level, "上海市浦东新区"))
    assert not check.ok and check.level == level
    assert check.reason.startswith("地址「浦东某小区8号」只能定位到") and "（上海市浦东新区）" in check.reason


def test_the_case_address_is_refused_with_what_was_found() -> None:
    check = judge("浦东某小区", amap("区县", "上海市浦东新区"))
    assert check.reason == "地址「浦东某小区」只能定位到区县（上海市浦东新区），缺少街道和门牌号，请补充完整（如：上海市浦东新区张杨路500号）。"


def test_no_match_is_refused() -> None:
    check = judge("浦东某小区", {"status": "1", "info": "OK", "infocode": "10000", "count": "0", "geocodes": []})
    assert (check.ok, check.unverified) == (False, False)
    assert check.reason.startswith("地图上找不到地址「浦东某小区」")


def test_an_amap_error_leaves_the_address_unverified_not_refused() -> None:
    check = judge("浦东某小区", {"status": "0", "info": "DAILY_QUERY_OVER_LIMIT", "infocode": "10003"})
    assert (check.ok, check.level, check.unverified) == (True, UNVERIFIED, True)
    assert "DAILY_QUERY_OVER_LIMIT" in check.reason


@pytest.mark.parametrize(
    ("text", "found"),
    [("张杨路500号", True), ("长乐路88弄", True), ("3号楼", True), ("五号", True), ("8-2号", True),
     ("地铁3号线旁", False), ("浦东某小区", False), ("张杨路", False)],
)
def test_house_number_in_the_text(text: str, found: bool) -> None:
    assert has_house_number(text) is found
