"""Allocation: the named store if it can fill the order, else the nearest that can, else split by line."""

from __future__ import annotations

import pytest

from domain.errors import InvalidInput, OutOfStock
from domain.inventory import Stock, plan_allocation
from domain.order import OrderLine

PADS, FILTER = OrderLine("BP-001", 2, 19_900), OrderLine("OF-002", 1, 4_500)


def test_named_store_that_can_fill_everything_wins() -> None:
    stock = {"HZ01": {"BP-001": 9, "OF-002": 9}, "SH01": {"BP-001": 2, "OF-002": 1}}
    assert plan_allocation([PADS, FILTER], stock, "SH01", ["HZ01", "SH01"]) == {"SH01": [PADS, FILTER]}


def test_named_store_short_falls_back_to_the_next_store_in_order() -> None:
    stock = {"HZ01": {"BP-001": 9, "OF-002": 9}, "SH01": {"BP-001": 1, "OF-002": 1}}
    assert plan_allocation([PADS, FILTER], stock, "SH01", ["HZ01", "SH01"]) == {"HZ01": [PADS, FILTER]}


def test_lines_in_different_stores_are_split() -> None:
    stock = {"HZ01": {"OF-002": 5}, "SH01": {"BP-001": 5}}
    assert plan_allocation([PADS, FILTER], stock, None, ["HZ01", "SH01"]) == {"SH01": [PADS], "HZ01": [FILTER]}


def test_nobody_has_it() -> None:
    with pytest.raises(OutOfStock, match="BP-001"):
        plan_allocation([PADS], {"SH01": {"BP-001": 1}}, "SH01", ["SH01"])


def test_on_hand_never_below_zero_or_below_reserved() -> None:
    stock = Stock("SH01", "BP-001", on_hand=5, reserved=3)
    with pytest.raises(InvalidInput):
        stock.set_on_hand(-1)
    with pytest.raises(InvalidInput, match="3 件被订单占用"):
        stock.set_on_hand(2)
    stock.set_on_hand(3)
    assert stock.available == 0
