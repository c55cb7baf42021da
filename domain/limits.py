"""One set of limits for every stored field, checked at every edge (chat, REST, import, channel push) the
same way: a value past its limit is refused with a short Chinese reason before anything is stored.

The lengths match the columns in integrations/db/tables.py (a test keeps them equal).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from domain.errors import InvalidInput


@dataclass(frozen=True)
class Limit:
    label: str  # what people call the field, for the refusal
    max_chars: int
    pattern: re.Pattern[str] | None = None  # the whole value must match, when given
    hint: str = ""  # what a valid value looks like

    def problem(self, value: str) -> str | None:
        """None when `value` is acceptable, else the reason in one Chinese sentence."""
        if not _storable(value):
            return f"{self.label}含有非法字符。"
        if len(value) > self.max_chars:
            return f"{self.label}太长（最多 {self.max_chars} 个字符）。"
        if self.pattern is not None and not self.pattern.fullmatch(value):
            return f"{self.label}格式不对{('，应为' + self.hint) if self.hint else ''}。"
        return None

    def check(self, value: str) -> str:
        reason = self.problem(value)
        if reason:
            raise InvalidInput(reason)
        return value


@dataclass(frozen=True)
class Range:
    """A whole number a stored field must stay within (an integer column, or a rule of the business)."""

    label: str
    low: int
    high: int
    unit: str = ""  # "fen": shown to people in yuan

    def problem(self, value: int) -> str | None:
        if self.low <= value <= self.high:
            return None
        return f"{self.label}须在 {self._show(self.low)} 到 {self._show(self.high)} 之间。"

    def fraction_problem(self, text: str) -> str:
        """The reason a fraction typed for a whole number is refused: it is never rounded (1.7 units is not 1)."""
        return f"{self.label}须为整数，不能是 {text}。"

    def _show(self, value: int) -> str:
        return f"{value / 100:.2f} 元" if self.unit == "fen" else str(value)

    def check(self, value: int) -> int:
        reason = self.problem(value)
        if reason:
            raise InvalidInput(reason)
        return value


def _storable(value: str) -> bool:
    """No NUL (PostgreSQL refuses it in text) and no lone surrogate (it has no UTF-8 form)."""
    return "\x00" not in value and not _SURROGATE.search(value)


_SURROGATE = re.compile("[\ud800-\udfff]")
_CODE = re.compile(r"[A-Za-z0-9_-]+")
_SKU = re.compile(r"[A-Za-z0-9._-]+")

ORDER_NO = Limit("单号", 64, _CODE, "字母、数字、- 或 _")  # our number, a channel's number or a waybill
EXTERNAL_ID = Limit("渠道单号", 64)
CHANNEL = Limit("渠道", 32, _CODE, "字母、数字、- 或 _")
STORE = Limit("门店编号", 32, _CODE, "字母、数字、- 或 _，如 SH01")
STORE_NAME = Limit("门店名称", 64)
SKU = Limit("SKU", 64, _SKU, "字母、数字、.、- 或 _，如 BP-001")
PRODUCT_NAME = Limit("商品名称", 128)
WAYBILL = Limit("运单号", 64, _CODE, "字母、数字、- 或 _")
AFTERSALE_NO = Limit("售后单号", 32, _CODE, "如 AS000012")
INCIDENT_NO = Limit("异常编号", 9, re.compile(r"[0-9]+"), "数字，如 12")
CUSTOMER_ID = Limit("客户编号", 64)
CUSTOMER_NAME = Limit("客户名称", 64)
PHONE = Limit("电话", 32, re.compile(r"[0-9+() -]+"), "数字")
# What channels call a customer (integrations/db/tables_orders.py customer_keys.value holds up to 128 characters).
_KEY = re.compile(r"[A-Za-z0-9_.:=+/-]+")
OPENID = Limit("OpenID", 128, _KEY, "字母、数字、- 或 _")
UNIONID = Limit("UnionID", 128, _KEY, "字母、数字、- 或 _")
MEMBER_CARD = Limit("会员卡号", 64, _KEY, "字母、数字、- 或 _")
PLATFORM_BUYER = Limit("平台买家编号", 128, _KEY, "字母、数字、- 或 _")
CUSTOMER_KEY_CHARS = 128
JS_CODE = Limit("登录凭证", 128, _KEY, "wx.login 给的 code")  # the mini-program's one-time login code
# An after-sale request's photos: links to pictures the customer uploaded (kept on the audit trail, https only).
PHOTO_URL = Limit("图片链接", 500, re.compile(r"https://[^\s/?#]+[^\s]*"), "https:// 开头的链接")
AFTERSALE_PHOTOS = Range("图片数", 0, 9)
ADDRESS = Limit("地址", 500)
REASON = Limit("原因", 500)
NOTE = Limit("说明", 500)
USERID = Limit("账号", 64)
PERSON_NAME = Limit("姓名", 64)
MESSAGE_ID = Limit("消息编号", 128)
AUDIT_ENTITY_ID_CHARS = 64  # what the audit trail keeps of a subject's name (audit_log.entity_id)

# Numbers of an order, the same through the REST API and `orderbot orders import`.
QTY = Range("数量", 1, 10_000)
UNIT_PRICE_FEN = Range("单价", 0, 999_999_999_999, unit="fen")  # 12 digits, 2 after the point
ORDER_LINES = Range("订单行数", 1, 200)
# A DingTalk interactive card's outTrackId as we issue it (integrations/dingtalk/render.py out_track_id): ids of
# the message it causes are keyed "reply:dingtalk:<id>:<n>" in a 128-character column, so 128 - 17 = 111.
DINGTALK_CARD_ID = Limit("卡片编号", 111)
DEDUP_KEY_CHARS = 128  # the outbox's de-dup key: keys built from ids near their limit are hashed to fit
# Chat arguments that are no stored field of their own: a customer named by id, name or phone (解冻), and a
# word such as 停用|启用 or the command 帮助 explains.
CUSTOMER_REF = Limit("客户", 64)
CHAT_WORD = Limit("参数", 32)
QUESTION = Limit("问题", 200)  # a plain question (问 …, or any text that is no command); card buttons carry it back

# What one chat message may carry: WeCom text messages are limited to 2,048 bytes, markdown to 4,096.
WECOM_TEXT_BYTES = 2048
WECOM_MARKDOWN_BYTES = 4096
DINGTALK_TEXT_BYTES = 5000


def cut_to_bytes(text: str, limit: int, *, ellipsis: str = "…") -> str:
    """`text` cut on a character boundary so that its UTF-8 form fits in `limit` bytes."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    room = limit - len(ellipsis.encode("utf-8"))
    return data[:room].decode("utf-8", errors="ignore") + ellipsis
