"""The Douyin push parser never fails on what a sender can put in a body: a batch is refused whole (BadPush)
or split into elements worth keeping and skipped ones; an element's data is judged only when processed, and
then fails as a MappingError naming the field."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.channels import MappingError
from integrations.channels.douyin.mapping import search_index_of, to_create_order
from integrations.channels.douyin.push import TAGS, BadPush, PushElement, parse_event, split_batch

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
elements = st.fixed_dictionaries({}, optional={
    "tag": st.sampled_from(["100", "101", "105", "106", "200", "999", ""]) | st.integers(),
    "msg_id": st.text(max_size=140) | st.integers(),
    "data": json_values | st.text(max_size=40),
})


@given(st.binary(max_size=200) | st.lists(elements | json_values, max_size=8).map(lambda x: json.dumps(x).encode()))
def test_any_body_is_refused_whole_or_split(body: bytes) -> None:
    try:
        kept, skipped = split_batch(body)
    except BadPush:
        return
    assert all(e.tag in TAGS and 0 < len(e.msg_id) <= 128 and isinstance(e.data, str) for e in kept)
    for element in kept:
        try:
            event = parse_event(element)
        except MappingError as err:
            assert err.channel == "douyin" and err.field.startswith("data")
        else:
            assert event.shop_order_id.isdigit()


def test_a_refund_push_reads_as_the_platform_sends_it() -> None:
    data = {"aftersale_id": 7000000000000000001, "aftersale_type": 2, "p_id": 6920000000000000001,
            "s_id": 6920000000000000001, "shop_id": 4463798, "reason_code": 3, "refund_amount": 19_900}
    event = parse_event(PushElement("200", "m1", json.dumps(data)))
    assert (event.shop_order_id, event.refund_amount_fen, event.aftersale_type) == ("6920000000000000001", 19_900, 2)


@pytest.mark.parametrize(("field", "value", "named"), [
    ("sku_order_list", [], "sku_order_list"),
    ("post_addr", None, "post_addr"),
    ("order_id", "", "order_id"),
])
def test_an_order_that_cannot_be_mapped_names_its_field(field: str, value: object, named: str) -> None:
    detail = {"order_id": "1", "order_status": 105, "post_addr": {"detail": "张杨路500号"},
              "sku_order_list": [{"code": "BP-001", "item_num": 1, "origin_amount": 100}], field: value}
    with pytest.raises(MappingError) as err:
        to_create_order(detail)
    assert err.value.field == named


def test_the_search_index_is_the_first_segment_of_a_phone_ciphertext() -> None:
    assert search_index_of("$abc123$Y2lwaGVy$1$") == "abc123"
    assert search_index_of("#Y2lwaGVy#") == ""
