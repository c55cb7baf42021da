"""SAL_SaleOrder rows → the canonical CreateOrder: the rows of one bill (FBillNo) are the lines of one order.

Assumptions (K3's standard sales order; write down any change beside FIELDS):
- wholesale orders to repair shops are settled on account (挂账/月结), so an audited bill counts as paid: the
  order is created `paid=True` and goes straight to allocation; money is collected through the receivable;
- FTaxPrice is the unit price with tax in yuan (to fen, half up); FQty must be a whole number above 0;
- the customer is named by its K3 number (FCustId.FNumber); orderbot's own customer is found from that key.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from domain import limits
from domain.commands import CreateOrder, LineInput
from domain.customers import CustomerKeys
from integrations.channels import MappingError

CHANNEL = "k3"
FIELDS = (
    "FBillNo", "FModifyDate", "FCreateDate", "FCustId.FNumber", "FCustId.FName", "FReceiveAddress",
    "FLinkMan", "FLinkPhone", "FMaterialId.FNumber", "FMaterialId.FName", "FQty", "FTaxPrice",
)
BILL_NO, MODIFIED = 0, 1
_at = {name: i for i, name in enumerate(FIELDS)}


def _text(row: Sequence[Any], field: str) -> str:
    value = row[_at[field]]
    return "" if value is None else str(value).strip()


def _checked(limit: limits.Limit, field: str, value: str) -> str:
    reason = limit.problem(value) if value else f"{limit.label}为空。"
    if reason:
        raise MappingError(CHANNEL, field, reason)
    return value


def _decimal(row: Sequence[Any], field: str) -> Decimal:
    try:
        value = Decimal(str(row[_at[field]]))
    except (InvalidOperation, ValueError) as err:
        raise MappingError(CHANNEL, field, "不是数字") from err
    if not value.is_finite():
        raise MappingError(CHANNEL, field, "不是数字")
    return value


def _line(row: Sequence[Any]) -> LineInput:
    sku = _checked(limits.SKU, "FMaterialId.FNumber", _text(row, "FMaterialId.FNumber"))
    qty = _decimal(row, "FQty")
    if qty != qty.to_integral_value():
        raise MappingError(CHANNEL, "FQty", limits.QTY.fraction_problem(str(qty)))
    fen = int((_decimal(row, "FTaxPrice") * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    for field, limit, value in (("FQty", limits.QTY, int(qty)), ("FTaxPrice", limits.UNIT_PRICE_FEN, fen)):
        if reason := limit.problem(value):
            raise MappingError(CHANNEL, field, reason)
    name = _text(row, "FMaterialId.FName")
    if reason := limits.PRODUCT_NAME.problem(name):
        raise MappingError(CHANNEL, "FMaterialId.FName", reason)
    return LineInput(sku=sku, qty=int(qty), unit_price_fen=fen, name=name)


def to_order(rows: Sequence[Sequence[Any]]) -> CreateOrder:
    """One bill's rows (same FBillNo) → one order; a row that cannot be mapped raises MappingError."""
    head = rows[0]
    if any(len(row) != len(FIELDS) for row in rows):
        raise MappingError(CHANNEL, "FieldKeys", f"每行应有 {len(FIELDS)} 列")
    bill = _checked(limits.EXTERNAL_ID, "FBillNo", _text(head, "FBillNo"))
    customer = _checked(limits.CUSTOMER_REF, "FCustId.FNumber", _text(head, "FCustId.FNumber"))
    address = _checked(limits.ADDRESS, "FReceiveAddress", _text(head, "FReceiveAddress"))
    name = _text(head, "FCustId.FName")
    phone = _text(head, "FLinkPhone")
    for field, limit, value in (("FCustId.FName", limits.CUSTOMER_NAME, name), ("FLinkPhone", limits.PHONE, phone)):
        if value and (reason := limit.problem(value)):
            raise MappingError(CHANNEL, field, reason)
    if reason := limits.ORDER_LINES.problem(len(rows)):
        raise MappingError(CHANNEL, "FBillNo", reason)
    return CreateOrder(
        channel=CHANNEL, external_id=bill, customer_id="",
        customer=CustomerKeys(k3_customer=customer, name=name, phone=phone),
        customer_name=name, customer_phone=phone, address=address,
        lines=tuple(_line(row) for row in rows), paid=True, by="k3", via="k3",
    )
