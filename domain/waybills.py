"""E-waybills: what a provider answers for a packed order, the command that records it on the order, and the fact
it leaves on the order's trail. The providers themselves live in integrations/waybills."""

from __future__ import annotations

from dataclasses import dataclass

from domain.commands import OrderCommand
from domain.events import Audited, Change
from domain.outbox_systems import WaybillRequest

CAINIAO, KUAIDI100 = "cainiao", "kuaidi100"
PROVIDER_NAMES = {CAINIAO: "菜鸟", KUAIDI100: "快递100"}


@dataclass(frozen=True)
class IssuedWaybill:
    """A provider's answer: the number, the courier, and either Cainiao's encrypted print document (printed by
    Cainiao's print component) or nothing, when orderbot prints its own label."""

    waybill: str
    courier: str  # the provider's courier code, e.g. "YTO" (Cainiao cpCode), "yuantong" (Kuaidi100 kuaidicom)
    courier_name: str  # what people read, e.g. 圆通速递
    provider: str  # cainiao | kuaidi100
    print_data: str = ""  # Cainiao printData (JSON text with encryptedData, signature, templateURL, ver)
    route_mark: str = ""  # 大头笔 / sorting code, when the provider gives one


@dataclass(frozen=True)
class RecordWaybill(OrderCommand[bool]):
    """The waybill a provider issued for `request`, stored on the order (run by the outbox's waybill sender)."""

    order_no: str
    request: WaybillRequest
    issued: IssuedWaybill
    by: str = "system"
    via: str = "waybill"

    def subject(self) -> tuple[str, str]:
        return "order", self.order_no

    def action(self) -> str:
        return "issue_waybill"


@dataclass(frozen=True)
class WaybillIssued(Audited):
    order_no: str
    state: str
    waybill: str
    courier: str
    provider: str
    replaces: str = ""  # the waybill it replaces after an address change (discarded at the provider)

    def change(self) -> Change:
        return Change("order", self.order_no, "issue_waybill", self.state, self.state,
                      detail={"waybill": self.waybill, "courier": self.courier, "provider": self.provider,
                              "replaces": self.replaces or None})
