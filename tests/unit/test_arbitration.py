"""The arbitration rule and the Kuaidi100 wire details, without I/O."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from domain.arbitration import (
    IN_TRANSIT,
    NO_TRACK,
    PICKED_UP,
    PROBLEM,
    SIGNED,
    CourierReport,
    WarehouseView,
    arbitrate,
)
from domain.clock import CST
from integrations.logistics.kuaidi100 import carrier_for, parse_track, sign

SHIPPED = datetime(2026, 2, 6, 10, 0, tzinfo=UTC)


def view(state: str, shipped_at: datetime | None = SHIPPED) -> WarehouseView:
    return WarehouseView("OB1", state, shipped_at)


def signed(at: datetime) -> CourierReport:
    return CourierReport("SF1", SIGNED, signed_at=at, last_at=at, last_context="已签收")


def test_signed_before_outbound_is_a_conflict() -> None:
    verdict = arbitrate(view("in_transit"), signed(SHIPPED - timedelta(hours=3)))
    assert verdict.conflict.startswith("签收时间") and "早于出库时间" in verdict.conflict
    assert verdict.trigger == ""


def test_signed_while_the_warehouse_has_not_shipped_is_a_conflict() -> None:
    verdict = arbitrate(view("packed", None), signed(SHIPPED))
    assert "仓库尚未出库" in verdict.conflict and "待出库" in verdict.conflict


def test_moving_while_the_warehouse_has_not_shipped_is_a_conflict() -> None:
    verdict = arbitrate(view("packed", None), CourierReport("SF1", IN_TRANSIT, last_context="到达上海转运中心"))
    assert "到达上海转运中心" in verdict.conflict


def test_customer_denying_a_signed_parcel_is_a_conflict() -> None:
    verdict = arbitrate(view("in_transit"), signed(SHIPPED + timedelta(days=1)), customer_says_received=False)
    assert "客户称未收到" in verdict.conflict


@pytest.mark.parametrize(
    ("state", "status", "trigger"),
    [
        ("shipped", PICKED_UP, "pick_up"),
        ("shipped", IN_TRANSIT, "pick_up"),
        ("in_transit", IN_TRANSIT, ""),
        ("shipped", SIGNED, "deliver"),
        ("in_transit", SIGNED, "deliver"),
        ("in_transit", PROBLEM, "report_exception"),
        ("delivered", SIGNED, ""),
        ("shipped", NO_TRACK, ""),
        ("packed", NO_TRACK, ""),
    ],
)
def test_agreeing_views_move_the_order_along(state: str, status: str, trigger: str) -> None:
    at = SHIPPED + timedelta(days=1) if status == SIGNED else None
    verdict = arbitrate(view(state), CourierReport("SF1", status, signed_at=at))
    assert (verdict.trigger, verdict.conflict) == (trigger, "")


def test_sign_is_upper_case_md5_of_param_key_customer() -> None:
    expected = hashlib.md5(b'{"com":"shunfeng","num":"SF1"}keycust').hexdigest().upper()
    assert sign('{"com":"shunfeng","num":"SF1"}', "key", "cust") == expected


def test_parse_track_reads_state_and_the_newest_step_in_china_time() -> None:
    body = {"state": "3", "data": [{"time": "2026-02-06 18:30:00", "context": "已签收，签收人：前台"},
                                    {"time": "2026-02-06 09:00:00", "context": "已揽收"}]}
    report = parse_track("SF1", body)
    assert report.status == SIGNED
    assert report.signed_at == datetime(2026, 2, 6, 18, 30, tzinfo=CST)
    assert parse_track("SF1", {"result": False, "returnCode": "500"}).status == NO_TRACK
    assert parse_track("SF1", {"state": "14", "data": []}).status == PROBLEM


def test_carrier_from_the_waybill_prefix() -> None:
    assert carrier_for("SF1234", "yunda") == "shunfeng"
    assert carrier_for("JDVA0001", "yunda") == "jd"
    assert carrier_for("7712345", "yunda") == "yunda"
