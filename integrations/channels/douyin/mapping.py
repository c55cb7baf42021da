"""A Douyin shop order (order.orderDetail's shop_order_detail, or one of order.searchList's shop_order_list)
as the canonical `CreateOrder`: amounts in fen as Douyin gives them, the buyer by `CustomerKeys`.

Buyer fields: since the platform's data-security rules, post_tel / post_receiver / post_addr.detail come as
ciphertext (encrypt_post_tel, encrypt_post_receiver, post_addr.encrypt_detail) and a mask (mask_post_tel …).
They are kept as given: the order shows the mask, the address keeps the detail's ciphertext when there is no
plain detail, and the customer is named by the phone's search index (the first "$…$" segment of a phone
ciphertext, which is what order.BatchSearchIndex returns for the plain number) and by doudian_open_id.
Nothing is decrypted here; the client's BuyerData decrypts where a customer must be texted.
"""

from __future__ import annotations

from typing import Any

from domain import commands as c
from domain.customers import CustomerKeys
from domain.limits import (
    ADDRESS,
    CUSTOMER_NAME,
    EXTERNAL_ID,
    ORDER_LINES,
    PRODUCT_NAME,
    QTY,
    SKU,
    UNIT_PRICE_FEN,
)
from integrations.channels import MappingError

CHANNEL = "douyin"
BY = "douyin"
# order_status: 1 待支付, 105 已支付, 2 备货中, 101 部分发货, 3 已发货, 4 已取消, 5 已完成
UNPAID, CANCELLED = 1, 4
PAID_STATUSES = frozenset({105, 2, 101, 3, 5})
PHONE_COLUMN_CHARS = 32  # orders.customer_phone


def to_create_order(detail: dict[str, Any], *, store: str | None = None) -> c.CreateOrder:
    order_id = _text(detail, "order_id")
    if not order_id or EXTERNAL_ID.problem(order_id):
        raise MappingError(CHANNEL, "order_id", "缺失或超长")
    items = detail.get("sku_order_list")
    if not isinstance(items, list) or not items:
        raise MappingError(CHANNEL, "sku_order_list", "订单没有商品")
    if ORDER_LINES.problem(len(items)):
        raise MappingError(CHANNEL, "sku_order_list", f"商品行 {len(items)} 超出范围")
    lines = tuple(_line(item, i) for i, item in enumerate(items))
    address = address_of(detail.get("post_addr"), "post_addr")
    name = _text(detail, "mask_post_receiver") or _plain(_text(detail, "post_receiver"))
    phone_mask = _text(detail, "mask_post_tel") or _plain(_text(detail, "post_tel"))
    return c.CreateOrder(
        channel=CHANNEL, external_id=order_id, customer_id="", address=address, lines=lines,
        paid=is_paid(detail), by=BY, via=CHANNEL, store=store,
        customer_name=name[:CUSTOMER_NAME.max_chars], customer_phone=phone_mask[:PHONE_COLUMN_CHARS],
        customer=keys_of(detail),
    )


def keys_of(detail: dict[str, Any]) -> CustomerKeys:
    tel = _text(detail, "post_tel")
    encrypted = _text(detail, "encrypt_post_tel") or (tel if _is_cipher(tel) else "")
    return CustomerKeys(
        phone="" if _is_cipher(tel) or "*" in tel else tel,
        phone_index=search_index_of(encrypted),
        douyin_buyer=_text(detail, "doudian_open_id"),
        name=_text(detail, "mask_post_receiver")[:CUSTOMER_NAME.max_chars],
    )


def search_index_of(cipher: str) -> str:
    """A phone ciphertext is "$index$cipher$key version$…": the index matches without decrypting."""
    if cipher.startswith("$") and cipher.count("$") >= 3:
        return cipher.split("$")[1]
    return ""


def status_of(detail: dict[str, Any]) -> int:
    value = detail.get("order_status")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def is_paid(detail: dict[str, Any]) -> bool:
    pay_time = detail.get("pay_time")
    return status_of(detail) in PAID_STATUSES or (isinstance(pay_time, int) and pay_time > 0)


def is_cancelled(detail: dict[str, Any]) -> bool:
    return status_of(detail) == CANCELLED


def address_of(post_addr: Any, field: str) -> str:
    if not isinstance(post_addr, dict):
        raise MappingError(CHANNEL, field, "缺少收货地址")
    parts = []
    for level in ("province", "city", "town", "street"):
        part = post_addr.get(level)
        if isinstance(part, dict) and isinstance(part.get("name"), str):
            parts.append(part["name"].strip())
    detail = str(post_addr.get("detail") or "").strip() or str(post_addr.get("encrypt_detail") or "").strip()
    if not detail:
        raise MappingError(CHANNEL, f"{field}.detail", "缺少详细地址")
    address = "".join(parts) + detail
    if ADDRESS.problem(address):
        raise MappingError(CHANNEL, field, "地址超长")
    return address


def _line(item: Any, i: int) -> c.LineInput:
    where = f"sku_order_list[{i}]"
    if not isinstance(item, dict):
        raise MappingError(CHANNEL, where, "不是对象")
    sku = _text(item, "code") or _text(item, "out_sku_id")
    if not sku:
        raise MappingError(CHANNEL, f"{where}.code", "商家编码（code/out_sku_id）为空，无法对应本系统 SKU")
    if SKU.problem(sku):
        raise MappingError(CHANNEL, f"{where}.code", f"商家编码 {sku[:64]!r} 不是有效 SKU")
    qty = item.get("item_num")
    if not isinstance(qty, int) or isinstance(qty, bool) or QTY.problem(qty):
        raise MappingError(CHANNEL, f"{where}.item_num", f"数量 {qty!r} 不是 1 到 10000 的整数")
    price = item.get("origin_amount")  # 商品现价, fen per piece
    if not isinstance(price, int) or isinstance(price, bool) or UNIT_PRICE_FEN.problem(price):
        raise MappingError(CHANNEL, f"{where}.origin_amount", f"单价 {price!r} 不是以分为单位的非负整数")
    name = _text(item, "product_name")[:PRODUCT_NAME.max_chars]
    return c.LineInput(sku, qty, price, name)


def _text(data: dict[str, Any], field: str) -> str:
    value = data.get(field)
    return str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""


def _plain(value: str) -> str:
    return "" if _is_cipher(value) else value


def _is_cipher(value: str) -> bool:
    return len(value) > 2 and value[0] in "$#~" and value[-1] == value[0]
