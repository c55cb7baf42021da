"""The REST API's request bodies: every stored field checked against domain/limits.py, unknown fields refused.

A limit's refusal is the same sentence here as in chat and in `orderbot orders import`; pydantic only carries it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from domain import limits as lim
from domain.customers import CustomerKeys
from domain.order_lifecycle import ORDER_LIFECYCLE

API_ACTOR = "api"
BUYER_ID_CHANNELS = ("douyin", "k3")


def _text(limit: lim.Limit, *, empty_ok: bool = False) -> Callable[[str], str]:
    def check(value: str) -> str:
        if empty_ok and value == "":  # an optional field left empty: no pattern to match
            return value
        reason = limit.problem(value)
        if reason:
            raise ValueError(reason)
        return value

    return check


def _number(limit: lim.Range) -> Callable[[int], int]:
    def check(value: int) -> int:
        reason = limit.problem(value)
        if reason:
            raise ValueError(reason)
        return value

    return check


def fen(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def _price(amount: Decimal) -> Decimal:
    reason = lim.UNIT_PRICE_FEN.problem(fen(amount))
    if reason:
        raise ValueError(reason)
    return amount


def _utc(at: AwareDatetime | None) -> AwareDatetime | None:
    """A time that has no UTC form (year 1 at +08:00, year 9999 at −08:00) cannot be stored."""
    try:
        return None if at is None else at.astimezone(UTC)
    except OverflowError:
        raise ValueError("时间超出范围。") from None


Channel = Annotated[str, AfterValidator(_text(lim.CHANNEL))]
ExternalId = Annotated[str, AfterValidator(_text(lim.EXTERNAL_ID))]
Store = Annotated[str, AfterValidator(_text(lim.STORE))]
Sku = Annotated[str, AfterValidator(_text(lim.SKU))]
ProductName = Annotated[str, AfterValidator(_text(lim.PRODUCT_NAME))]
CustomerId = Annotated[str, AfterValidator(_text(lim.CUSTOMER_ID))]
CustomerName = Annotated[str, AfterValidator(_text(lim.CUSTOMER_NAME))]
Phone = Annotated[str, AfterValidator(_text(lim.PHONE, empty_ok=True))]
OpenId = Annotated[str, AfterValidator(_text(lim.OPENID, empty_ok=True))]
UnionId = Annotated[str, AfterValidator(_text(lim.UNIONID, empty_ok=True))]
MemberCard = Annotated[str, AfterValidator(_text(lim.MEMBER_CARD, empty_ok=True))]
PlatformBuyer = Annotated[str, AfterValidator(_text(lim.PLATFORM_BUYER, empty_ok=True))]
Address = Annotated[str, AfterValidator(_text(lim.ADDRESS))]
StoreName = Annotated[str, AfterValidator(_text(lim.STORE_NAME))]
Reason = Annotated[str, AfterValidator(_text(lim.REASON))]
Actor = Annotated[str, AfterValidator(_text(lim.USERID))]
OrderNo = Annotated[str, AfterValidator(_text(lim.ORDER_NO))]
Waybill = Annotated[str, AfterValidator(_text(lim.WAYBILL))]
Qty = Annotated[int, AfterValidator(_number(lim.QTY))]
Price = Annotated[Decimal, Field(decimal_places=2), AfterValidator(_price)]


def stripped_not_blank(cls: type, value: object) -> object:
    """A `mode="before"` validator: text is stripped, and text that is only blanks is refused."""
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("不能为空")
        return value.strip()
    return value


class Body(BaseModel):
    """A field the API does not know is refused, not ignored: `"Paid": false` must not pass as paid."""

    model_config = ConfigDict(extra="forbid")


class CustomerIn(Body):
    """The buyer, by our id or by any key a channel knows them by; with none, a guest customer of their own."""

    id: CustomerId = ""  # "" = found or created from the keys
    name: CustomerName = ""
    phone: Phone = ""
    openid: OpenId = ""
    unionid: UnionId = ""
    member_card: MemberCard = ""
    platform_buyer_id: PlatformBuyer = ""  # the channel's buyer id: Douyin's buyer, or K3's customer number

    @field_validator("id", "openid", "unionid", "member_card", "platform_buyer_id", mode="before")
    @classmethod
    def trimmed(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value

    def keys(self, channel: str) -> CustomerKeys:
        buyer = self.platform_buyer_id
        return CustomerKeys(
            phone=self.phone, openid=self.openid, unionid=self.unionid, member_card=self.member_card,
            douyin_buyer=buyer if channel == "douyin" else "", k3_customer=buyer if channel == "k3" else "",
            name=self.name,
        )


class LineIn(Body):
    sku: Sku
    qty: Qty
    unit_price: Price
    name: ProductName = ""


class OrderIn(Body):
    channel: Channel = Field(min_length=1)
    external_id: ExternalId = Field(min_length=1)
    customer: CustomerIn = Field(default_factory=CustomerIn)
    address: Address = Field(min_length=4)
    lines: list[LineIn] = Field(min_length=lim.ORDER_LINES.low, max_length=lim.ORDER_LINES.high)
    paid: StrictBool  # no default: an order is paid only when the caller says so
    store: Store | None = None

    _not_blank = field_validator("channel", "external_id", "address", mode="before")(stripped_not_blank)

    @model_validator(mode="after")
    def buyer_of_a_known_platform(self) -> OrderIn:
        """A platform's buyer id names someone only on that platform: Douyin's buyer or K3's customer."""
        if self.customer.platform_buyer_id and self.channel not in BUYER_ID_CHANNELS:
            raise ValueError(f"customer.platform_buyer_id 只用于渠道 {'、'.join(BUYER_ID_CHANNELS)}")
        return self


class AddressIn(Body):
    address: Address = Field(min_length=4)
    by: Actor = "customer"


class TriggerIn(Body):
    trigger: str
    waybill: Waybill | None = None
    reason: Reason = ""
    by: Actor = API_ACTOR

    @field_validator("trigger")
    @classmethod
    def known_trigger(cls, value: str) -> str:
        if not ORDER_LIFECYCLE.has_trigger(value):
            raise ValueError("未知操作")
        return value


class AfterSaleIn(Body):
    order_no: OrderNo = Field(min_length=1)
    kind: Literal["refund", "return", "exchange"]
    reason: Reason = ""
    amount: Decimal = Field(ge=0, max_digits=12, decimal_places=2)
    by: Actor = API_ACTOR


class StockIn(Body):
    on_hand: int = Field(ge=0, le=10_000_000)


class DemandSignalIn(Body):
    """A demand signal for the safety-stock forecast: cart adds (a count) or live viewers (a reading)."""

    sku: Sku
    channel: Channel
    kind: Literal["cart_add", "live_viewers"]
    value: int = Field(ge=0, le=100_000_000)
    at: Annotated[AwareDatetime | None, AfterValidator(_utc)] = None  # ISO 8601 with an offset; absent = now


class SkuIn(Body):
    name: ProductName = ""
    replenish_threshold: int = Field(ge=0, le=10_000_000)  # units per 48 h that call for replenishment
    lead_time_days: int = Field(default=0, ge=0, le=365)


class UnfreezeIn(Body):
    by: Actor = Field(default=API_ACTOR, min_length=1)
    channels: list[Channel] = Field(default_factory=list, max_length=50)  # empty = every frozen channel
