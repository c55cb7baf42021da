"""The K3 books' JSON as it goes over the wire: Save of an AR_receivable (receivable and red receivable), Submit and
Audit, and the bill number read back from Save's answer."""

from __future__ import annotations

from typing import Any

import pytest

from domain.outbox_systems import K3_RECEIVABLE, K3_RED_RECEIVABLE, K3Booking
from integrations.channels.k3.books import BooksConfig, numbers_body, remark, save_body, saved_number
from integrations.channels.k3.client import K3Error
from integrations.fakes.k3_books import result

CFG = BooksConfig("101", due_days=30, default_customer="CUST-RETAIL")
LINES = (("BP-001", "刹车片", 2, 19_900), ("OF-002", "机油滤芯", 1, 3_550))


def booking(about: str = K3_RECEIVABLE, *, ref: str = "SO1", amount_fen: int = 43_350, k3_customer: str = "CUST-0001"
            ) -> dict[str, Any]:
    return K3Booking(about, "SO1", ref, "C-4S-01", k3_customer, LINES, amount_fen, "2026-03-02").payload()


def test_a_receivable_is_saved_with_the_order_lines_customer_and_organisation() -> None:
    assert save_body(K3_RECEIVABLE, booking(), CFG) == {"formid": "AR_receivable", "data": {
        "IsDeleteEntry": "true", "IsVerifyBaseDataField": "true", "Model": {
            "FID": 0, "FBillTypeID": {"FNUMBER": "YSDLX01_SYS"}, "FDATE": "2026-03-02", "FENDDATE_H": "2026-04-01",
            "FCUSTOMERID": {"FNumber": "CUST-0001"}, "FCURRENCYID": {"FNumber": "PRE001"},
            "FSETTLEORGID": {"FNumber": "101"}, "FPAYORGID": {"FNumber": "101"}, "FSALEORGID": {"FNumber": "101"},
            "FAR_Remark": "orderbot 发货 SO1",
            "FEntityDetail": [
                {"FMATERIALID": {"FNumber": "BP-001"}, "FPriceQty": 2, "FTaxPrice": 199.0, "FEntryTaxRate": 13.0},
                {"FMATERIALID": {"FNumber": "OF-002"}, "FPriceQty": 1, "FTaxPrice": 35.5, "FEntryTaxRate": 13.0},
            ]}}}


def test_without_a_k3_number_the_default_customer_then_our_own_id_is_sent() -> None:
    model = save_body(K3_RECEIVABLE, booking(k3_customer=""), CFG)["data"]["Model"]
    assert model["FCUSTOMERID"] == {"FNumber": "CUST-RETAIL"}
    model = save_body(K3_RECEIVABLE, booking(k3_customer=""), BooksConfig("101"))["data"]["Model"]
    assert model["FCUSTOMERID"] == {"FNumber": "C-4S-01"}


def test_a_whole_refund_is_the_red_receivable_of_every_line() -> None:
    model = save_body(K3_RED_RECEIVABLE, booking(K3_RED_RECEIVABLE, ref="AS1"), CFG)["data"]["Model"]
    assert model["FAR_Remark"] == "orderbot 退款 AS1 订单 SO1"
    assert [(x["FMATERIALID"]["FNumber"], x["FPriceQty"], x["FTaxPrice"]) for x in model["FEntityDetail"]] == [
        ("BP-001", -2, 199.0), ("OF-002", -1, 35.5)]


@pytest.mark.parametrize(("cfg", "material"), [(CFG, "BP-001"), (BooksConfig("101", refund_material="TK-01"), "TK-01")])
def test_a_part_refund_is_one_red_line_of_its_amount(cfg: BooksConfig, material: str) -> None:
    model = save_body(K3_RED_RECEIVABLE, booking(K3_RED_RECEIVABLE, ref="AS2", amount_fen=5_001), cfg)["data"]["Model"]
    assert [(x["FMATERIALID"]["FNumber"], x["FPriceQty"], x["FTaxPrice"]) for x in model["FEntityDetail"]] == [
        (material, -1, 50.01)]


def test_submit_and_audit_name_the_bill_by_number() -> None:
    assert numbers_body("AR00000007") == {"formid": "AR_receivable",
                                          "data": {"CreateOrgId": 0, "Numbers": ["AR00000007"], "Ids": ""}}


def test_the_bill_number_is_read_from_saves_answer() -> None:
    assert saved_number(result(True, number="AR00000003", bill_id=100003)) == "AR00000003"
    only_entities = {"Result": {"ResponseStatus": {"IsSuccess": True, "SuccessEntitys": [{"Number": "AR9"}]}}}
    assert saved_number(only_entities) == "AR9"
    with pytest.raises(K3Error):
        saved_number({"Result": {"ResponseStatus": {"IsSuccess": True}}})


def test_the_remark_that_finds_a_booking_again_is_stable() -> None:
    assert remark(K3_RECEIVABLE, booking()) == remark(K3_RECEIVABLE, booking(amount_fen=1)) == "orderbot 发货 SO1"
    assert K3Booking(K3_RED_RECEIVABLE, "SO1", "AS1", "C", "", LINES, 1, "2026-03-02").dedup_key == "k3:red_receivable:AS1"
