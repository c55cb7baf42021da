"""Which registered template each kind of customer text uses, and the variables it is filled with.

The variable names are the ones to register at Aliyun (README "SMS (Aliyun)"). Rows written before texts
carried their variables (payload {"text"} only, kind order_shipped) get them from their text and key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from domain.outbox import SMS_ADDRESS_CHANGED, SMS_REFUND, SMS_SHIPPED
from integrations.delivery.rows import OutboxRow
from integrations.logistics.kuaidi100 import carrier_for

PARAM_NAMES: dict[str, tuple[str, ...]] = {
    SMS_SHIPPED: ("order_no", "waybill", "courier"),
    SMS_ADDRESS_CHANGED: ("order_no", "address"),
    SMS_REFUND: ("order_no", "amount"),
}
COURIERS = {  # Kuaidi100 carrier codes (as carrier_for gives them) → the name a customer knows
    "shunfeng": "顺丰速运", "jd": "京东物流", "yuantong": "圆通速递", "zhongtong": "中通快递", "yunda": "韵达快递",
    "shentong": "申通快递", "ems": "EMS", "jtexpress": "极兔速递",
}
_OLD_SHIPPED_TEXT = re.compile(r"运单号\s*(\S+?)，")


def courier_name(waybill: str) -> str:
    return COURIERS.get(carrier_for(waybill, ""), "快递")


@dataclass(frozen=True)
class SmsTemplates:
    codes: Mapping[str, str] = field(default_factory=dict)  # kind → template code (SMS_…); empty: not configured

    def code_for(self, kind: str) -> str:
        return self.codes.get(kind, "")


def template_params(row: OutboxRow) -> dict[str, str]:
    """The template's variables for this row, by their registered names."""
    given = row.payload.get("params")
    params = {str(k): str(v) for k, v in given.items()} if isinstance(given, dict) else {}
    if row.kind == SMS_SHIPPED:
        if not params:  # a row from before variables travelled with the text
            key = row.dedup_key or ""
            params["order_no"] = str(row.payload.get("order_no") or key.rsplit(":", 1)[-1])
            found = _OLD_SHIPPED_TEXT.search(str(row.payload.get("text", "")))
            params["waybill"] = found.group(1) if found else ""
        params.setdefault("courier", courier_name(params.get("waybill", "")))
    return params
