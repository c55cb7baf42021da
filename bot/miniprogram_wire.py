"""The mini-program API's wire shapes: the request bodies it accepts and the JSON the app is shown.

The routes that use them are in bot/channels_miniprogram.py.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StrictBool, field_validator

from bot.api_bodies import (
    Address,
    Body,
    CustomerName,
    ExternalId,
    LineIn,
    Phone,
    Reason,
    Store,
    stripped_not_blank,
)
from domain import limits as lim
from domain.aftersale import AfterSale
from domain.customers import CHANNEL_LABELS
from domain.order import Order
from domain.order_lifecycle import ORDER_LIFECYCLE
from integrations.db.customer_orders import CustomerOrder

# ---- request bodies: the REST API's field types and limits (bot/api_bodies.py)

def _limited(limit: lim.Limit) -> AfterValidator:
    def check(value: str) -> str:
        reason = limit.problem(value)
        if reason:
            raise ValueError(reason)
        return value

    return AfterValidator(check)


JsCode = Annotated[str, _limited(lim.JS_CODE)]
PhotoUrl = Annotated[str, _limited(lim.PHOTO_URL)]


class LoginIn(Body):
    js_code: JsCode = Field(min_length=1)


class MiniOrderIn(Body):
    """POST /api/v1/orders' body without channel (always "miniprogram") and customer (the signed-in one)."""

    external_id: ExternalId = Field(min_length=1)
    address: Address = Field(min_length=4)
    lines: list[LineIn] = Field(min_length=lim.ORDER_LINES.low, max_length=lim.ORDER_LINES.high)
    paid: StrictBool
    store: Store | None = None
    name: CustomerName = ""  # the consignee, as typed in the app
    phone: Phone = ""  # a mobile number is a customer key: it links this customer's orders on other channels

    _not_blank = field_validator("external_id", "address", mode="before")(stripped_not_blank)


class MiniAddressIn(Body):
    address: Address = Field(min_length=4)


class MiniAfterSaleIn(Body):
    kind: Literal["return", "refund"]
    reason: Reason = Field(min_length=1)
    photos: list[PhotoUrl] = Field(default_factory=list, max_length=lim.AFTERSALE_PHOTOS.high)
    amount: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)  # absent: the order's amount

    _not_blank = field_validator("reason", mode="before")(stripped_not_blank)


# ---- what the app shows

def listed(o: CustomerOrder) -> dict[str, Any]:
    return {"order_no": o.order_no, "channel": o.channel, "channel_label": CHANNEL_LABELS.get(o.channel, o.channel),
            "external_id": o.external_id, "state": o.state, "label": ORDER_LIFECYCLE.label(o.state),
            "amount": f"{o.amount_fen / 100:.2f}", "waybill": o.waybill, "created_at": o.created_at}


def order_view(order: Order) -> dict[str, Any]:
    return {
        "order_no": order.order_no, "channel": order.channel, "external_id": order.external_id,
        "state": order.state, "label": order.state_label, "address": order.address,
        "name": order.customer_name, "phone": order.customer_phone,
        "lines": [{"sku": x.sku, "name": x.name, "qty": x.qty, "unit_price": f"{x.unit_price_fen / 100:.2f}"}
                  for x in order.lines],
        "amount": f"{order.amount_fen / 100:.2f}", "waybill": order.waybill,
        "address_change_pending": order.address_change_pending,
        "created_at": order.created_at, "shipped_at": order.shipped_at,
    }


def aftersale_view(a: AfterSale, photos: list[str]) -> dict[str, Any]:
    return {"id": a.aftersale_no, "order_no": a.order_no, "kind": a.kind, "reason": a.reason,
            "amount": f"{a.amount_fen / 100:.2f}", "state": a.state, "label": a.state_label, "photos": photos,
            "created_at": a.created_at}
