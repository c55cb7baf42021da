"""The e-waybill providers' wire formats: Cainiao LINK's data_digest against the worked example Cainiao publishes,
the form and request body of TMS_WAYBILL_GET, Kuaidi100's label/order sign and form, and address splitting."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from domain.labels import Party
from domain.outbox_systems import WaybillRequest
from integrations.waybills.base import split_address
from integrations.waybills.cainiao import CainiaoWaybills, data_digest
from integrations.waybills.kuaidi100 import Kuaidi100Waybills, sign

REQUEST = WaybillRequest("OB00000012", "SH01", "OB00000012-1", Party("浦东店", "02150001234", "上海市浦东新区川沙路100号"),
                         Party("浦东4S店", "13800000000", "浙江省杭州市西湖区文三路1号"), "刹车片×2", 2)


def test_cainiao_digest_matches_the_worked_example_in_cainiaos_faq() -> None:
    # LINK FAQ on error S02: content "hello1234", appSecret "key123", UTF-8 → "ufYU7rvXhHY3IDyZgyt6SA=="
    assert data_digest("hello1234", "key123") == "ufYU7rvXhHY3IDyZgyt6SA=="


def test_cainiao_digest_is_over_utf8_bytes_of_chinese_content() -> None:
    assert data_digest("浦东", "k") != data_digest("浦东", "K")
    assert data_digest("浦东", "k") == "fiE+40NqR06CPnz0PvrKaA=="  # base64(md5("浦东k" as UTF-8))


def test_cainiao_form_carries_the_json_it_signs() -> None:
    client = CainiaoWaybills(httpx.AsyncClient(), api_base="http://x", provider_id="ob-link", secret="s3",
                             cp_code="YTO", to_code="TO1")
    form = client.form("TMS_WAYBILL_GET", client.get_request(REQUEST))
    assert set(form) == {"msg_type", "logistic_provider_id", "logistics_interface", "data_digest", "to_code"}
    assert form["data_digest"] == data_digest(form["logistics_interface"], "s3")
    body = json.loads(form["logistics_interface"])
    [trade] = body["tradeOrderInfoDtos"]
    assert trade["objectId"] == trade["orderInfo"]["tradeOrderList"][0] == "OB00000012-1"
    assert trade["recipient"] == {"address": {"province": "浙江省", "city": "杭州市", "district": "西湖区",
                                              "detail": "文三路1号"}, "name": "浦东4S店", "mobile": "13800000000"}
    assert body["sender"]["phone"] == "02150001234"  # a landline is a phone, not a mobile
    assert trade["packageInfo"]["items"] == [{"name": "刹车片×2", "count": 2}]


def test_kuaidi100_sign_is_upper_md5_of_param_t_key_secret() -> None:
    expected = hashlib.md5(b'{"a":1}1700000000000keysecret').hexdigest().upper()
    assert sign('{"a":1}', "1700000000000", "key", "secret") == expected
    assert expected.isupper() and len(expected) == 32


def test_kuaidi100_form_names_the_method_and_signs_the_param() -> None:
    client = Kuaidi100Waybills(httpx.AsyncClient(), api_base="http://x", key="k", secret="s", partner_id="C1",
                               partner_key="pk", kuaidicom="zhongtong", clock_ms=lambda: "1700000000123")
    form = client.form("order", client.order_param(REQUEST))
    assert (form["method"], form["key"], form["t"]) == ("order", "k", "1700000000123")
    assert form["sign"] == sign(form["param"], "1700000000123", "k", "s")
    param = json.loads(form["param"])
    assert (param["orderId"], param["kuaidicom"], param["printType"]) == ("OB00000012-1", "zhongtong", "NON")
    assert param["sendMan"] == {"name": "浦东店", "mobile": "02150001234", "printAddr": "上海市浦东新区川沙路100号"}


@pytest.mark.parametrize(("text", "parts"), [
    ("上海市浦东新区张杨路500号", ("上海市", "上海市", "浦东新区", "张杨路500号")),
    ("广西壮族自治区南宁市青秀区民族大道1号", ("广西壮族自治区", "南宁市", "青秀区", "民族大道1号")),
    ("张杨路500号", ("", "", "", "张杨路500号")),
])
def test_an_address_is_split_by_its_suffixes(text: str, parts: tuple[str, str, str, str]) -> None:
    found = split_address(text)
    assert (found["province"], found["city"], found["district"], found["detail"]) == parts
