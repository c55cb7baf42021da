"""K3 WebAPI pieces checked against values computed with kingdee-cdp-webapi-sdk 8.2.0 itself, and the mapping."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.settings import Settings
from integrations.channels import MappingError
from integrations.channels.k3.auth import decode_app_secret, hmac_b64, signed_path
from integrations.channels.k3.client import refusal
from integrations.channels.k3.mapping import FIELDS, to_order


def test_app_secret_signature_and_path_as_the_sdk_computes_them() -> None:
    # encode_util.DecodeAppSecret / hmac_util.HmacSHA256 of the SDK, run on these inputs
    assert decode_app_secret("Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFi") == "Vl9aVgdBW1YZR0dLBQEEDFcGDltYBwVR"
    assert decode_app_secret("short") == ""
    assert hmac_b64("abc\nx", "key") == "YjQzNjEzM2ZjMzM0ZmYyY2VmNjIyNTkxM2EwOGY2NzM4YmY4NzQzNjU1OTQ0ZTg5NTU3MWM3ZmQwZDQ3ZDlhNw=="
    assert signed_path("http://h:80/k3cloud/A.B.common.kdsvc") == "%2Fk3cloud%2FA.B.common.kdsvc"


def test_a_lost_session_is_recognised_in_its_k3_shape() -> None:
    lost = [[{"Result": {"ResponseStatus": {"ErrorCode": 500, "IsSuccess": False, "MsgCode": 1,
                                             "Errors": [{"FieldName": None, "Message": "会话信息已丢失，请重新登录"}]}}}]]
    assert refusal(lost) == lost[0][0]["Result"]["ResponseStatus"]
    assert refusal([["XSDD1", "2026-03-02T09:00:00"]]) is None


def row(qty: object = 2, price: object = 199.0, **over: object) -> list[object]:
    base = {"FBillNo": "XSDD1", "FModifyDate": "2026-03-02T09:00:00", "FCreateDate": "2026-03-02T09:00:00",
            "FCustId.FNumber": "CUST-1", "FCustId.FName": "驰骋汽修", "FReceiveAddress": "上海市闵行区七莘路100号",
            "FLinkMan": "张", "FLinkPhone": "13900000000", "FMaterialId.FNumber": "BP-001",
            "FMaterialId.FName": "刹车片", "FQty": qty, "FTaxPrice": price, **over}
    return [base[f] for f in FIELDS]


@given(st.integers(min_value=1, max_value=10_000), st.decimals(min_value=0, max_value=10**6, places=2))
def test_whole_quantities_and_prices_in_yuan_map_exactly(qty: int, price: Decimal) -> None:
    order = to_order([row(float(qty), str(price))])
    assert order.lines[0].qty == qty and order.lines[0].unit_price_fen == int(price * 100)
    assert order.customer.k3_customer == "CUST-1" and order.customer_id == "" and order.paid


@pytest.mark.parametrize(("field", "bad"), [("FQty", 1.7), ("FQty", 0), ("FTaxPrice", "abc"), ("FTaxPrice", -1),
                                            ("FCustId.FNumber", ""), ("FMaterialId.FNumber", "刹 车")])
def test_a_bad_field_is_named_in_the_mapping_error(field: str, bad: object) -> None:
    bad_row = row(**{field: bad}) if field not in ("FQty", "FTaxPrice") else (
        row(qty=bad) if field == "FQty" else row(price=bad))
    with pytest.raises(MappingError) as err:
        to_order([bad_row])
    assert err.value.field == field and err.value.channel == "k3"


def test_k3_settings_keep_the_secret_out_of_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERBOT_K3__APP_SECRET", "s3cret-value")
    monkeypatch.setenv("ORDERBOT_K3__SERVER_URL", "https://erp.example.com/k3cloud/")
    cfg = Settings().k3
    assert cfg.app_secret.get_secret_value() == "s3cret-value" and "s3cret" not in repr(cfg)
    assert not cfg.configured  # no acct id / app id: the channel stays off
