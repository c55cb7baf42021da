"""The Douyin shop push: a signed JSON list of {"tag", "msg_id", "data"} where data is a JSON string.

Each element is judged on its own: one that is broken never fails the others of its batch. Tags handled
(message docs op.jinritemai.com/docs/message-docs/30/109, 110, 114, 123 and 31/115, payloads as in the SDK's
message/*.go): 100 订单创建, 101 订单支付/确认, 105 买家收货信息变更, 106 订单取消, 200 买家发起售后申请.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from domain.limits import MESSAGE_ID
from integrations.channels import MappingError

CHANNEL = "douyin"
CALLBACK_OK = {"code": 0, "msg": "success"}  # anything else makes Douyin send the batch again
CREATED, PAID, ADDRESS_CHANGED, CANCELLED, REFUND_CREATED = "100", "101", "105", "106", "200"
TAGS = {CREATED: "订单创建", PAID: "订单支付", ADDRESS_CHANGED: "收货信息变更", CANCELLED: "订单取消",
        REFUND_CREATED: "售后申请"}
MAX_ELEMENTS = 500  # per batch; Douyin sends far fewer


class BadPush(ValueError):
    """A body that is no push at all (not a JSON list): refused whole, nothing stored."""


@dataclass(frozen=True)
class PushElement:
    tag: str
    msg_id: str
    data: str  # the JSON string as Douyin sent it

    def text(self) -> str:
        """How the element is kept in the inbox (and shown in a dead-message report)."""
        return json.dumps({"tag": self.tag, "msg_id": self.msg_id, "data": self.data}, ensure_ascii=False)


@dataclass(frozen=True)
class Skipped:
    index: int
    reason: str
    tag: str = ""


def split_batch(body: bytes) -> tuple[list[PushElement], list[Skipped]]:
    """The elements worth keeping, and what was skipped (unknown tag: ignored; broken: no msg_id or tag)."""
    try:
        items = json.loads(body)
    except (UnicodeDecodeError, ValueError) as err:
        raise BadPush("推送内容不是 JSON") from err
    if not isinstance(items, list):
        raise BadPush("推送内容应为消息数组")
    if len(items) > MAX_ELEMENTS:
        raise BadPush(f"一次推送最多 {MAX_ELEMENTS} 条消息")
    kept: list[PushElement] = []
    skipped: list[Skipped] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            skipped.append(Skipped(i, "not an object"))
            continue
        tag, msg_id, data = item.get("tag"), item.get("msg_id"), item.get("data")
        tag = str(tag) if isinstance(tag, int | str) else ""
        msg_id = str(msg_id) if isinstance(msg_id, int | str) else ""
        if not tag or not msg_id:
            skipped.append(Skipped(i, "no tag or msg_id", tag))
        elif MESSAGE_ID.problem(msg_id):
            skipped.append(Skipped(i, "msg_id too long", tag))
        elif tag not in TAGS:
            skipped.append(Skipped(i, "tag not handled", tag))
        else:  # a broken data string is kept: it is parked as dead with a report when processed
            kept.append(PushElement(tag, msg_id, data if isinstance(data, str) else json.dumps(data)))
    return kept, skipped


def element_of(text: str) -> PushElement:
    item = json.loads(text)
    return PushElement(str(item["tag"]), str(item["msg_id"]), str(item["data"]))


@dataclass(frozen=True)
class TradeEvent:
    """What a push says; the order itself is read from order.orderDetail (the push is only a hint)."""

    tag: str
    shop_order_id: str  # p_id
    shop_id: str = ""
    aftersale_id: str = ""  # 200
    aftersale_type: int = 0  # 200: 0 退货退款, 1 已发货仅退款, 2 未发货仅退款, 3 换货
    refund_amount_fen: int = 0  # 200
    reason_code: int = 0  # 200
    cancel_reason: str = ""  # 106


def parse_event(element: PushElement) -> TradeEvent:
    """The element's data; a data string that is not what its tag promises raises MappingError."""
    try:
        data = json.loads(element.data)
    except ValueError as err:
        raise MappingError(CHANNEL, "data", "不是 JSON 字符串") from err
    if not isinstance(data, dict):
        raise MappingError(CHANNEL, "data", "不是 JSON 对象")
    p_id = _id(data, "p_id")
    if element.tag != REFUND_CREATED:
        return TradeEvent(element.tag, p_id, _opt_id(data, "shop_id"), cancel_reason=str(data.get("cancel_reason") or ""))
    return TradeEvent(
        element.tag, p_id, _opt_id(data, "shop_id"), aftersale_id=_id(data, "aftersale_id"),
        aftersale_type=_int(data, "aftersale_type"), refund_amount_fen=_int(data, "refund_amount"),
        reason_code=_int(data, "reason_code"),
    )


def _id(data: dict[str, Any], field: str) -> str:
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        raise MappingError(CHANNEL, f"data.{field}", "缺失或不是编号")
    text = str(value).strip()
    if len(text) > 64 or not text.isdigit():
        raise MappingError(CHANNEL, f"data.{field}", "不是抖店订单编号")
    return text


def _opt_id(data: dict[str, Any], field: str) -> str:
    value = data.get(field)
    return str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""


def _int(data: dict[str, Any], field: str) -> int:
    value = data.get(field, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MappingError(CHANNEL, f"data.{field}", "不是非负整数")
    return value
