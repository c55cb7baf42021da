"""The store register: a store's code, the name people use, and the sender on its waybills.

A store exists for orderbot when it is registered here (or, as before the register, when somebody works in it
or it holds stock). The register is what an e-waybill names as the sender (domain/labels.py Party).
"""

from __future__ import annotations

from dataclasses import dataclass

from domain import limits
from domain.commands import Command
from domain.errors import InvalidInput
from domain.events import Audited, Change
from domain.labels import Party


@dataclass(frozen=True)
class Store:
    code: str
    name: str
    address: str
    phone: str = ""

    def sender(self) -> Party:
        """The sender printed on this store's waybills."""
        return Party(self.name, self.phone, self.address)


def checked_store(code: str, name: str, address: str, phone: str = "") -> Store:
    """A store as the register keeps it; InvalidInput names the first field that is not acceptable."""
    code, name, address, phone = code.strip(), name.strip(), address.strip(), phone.strip()
    for value, limit in ((code, limits.STORE), (name, limits.STORE_NAME), (address, limits.ADDRESS)):
        reason = limit.problem(value)
        if reason:
            raise InvalidInput(reason)
    if len(address) < 4:
        raise InvalidInput("门店地址太短，请写清楚省市区、街道和门牌号（面单上的寄件地址）。")
    if phone:
        reason = limits.PHONE.problem(phone)
        if reason:
            raise InvalidInput(reason)
    return Store(code, name, address, phone)


@dataclass(frozen=True)
class SaveStore(Command[Store]):
    """Register a store or change its name, address or phone (CLI `orderbot stores add`, PUT /api/v1/stores/{code})."""

    code: str
    name: str
    address: str
    phone: str
    by: str
    via: str

    def subject(self) -> tuple[str, str]:
        return "store", self.code


@dataclass(frozen=True)
class StoreSaved(Audited):
    code: str
    created: bool
    name: str
    address: str
    phone: str
    before: dict[str, str] | None = None  # the fields that changed, as they were

    def change(self) -> Change:
        after = {"name": self.name, "address": self.address, "phone": self.phone}
        return Change("store", self.code, "register_store" if self.created else "update_store",
                      detail={"from": self.before, "to": after})
