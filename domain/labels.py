"""A shipping label as the packing bench prints it: platform-neutral values, rendered by integrations/printing.

An e-waybill provider (integrations/waybills) answers with a waybill number and either the label's own fields
(`Label`, printed as TSPL/ZPL/PDF by orderbot) or an encrypted print document that only the provider's print
component can render (`EncryptedPrint`, Cainiao's printData). Both travel in a `PrintLabel` outbox row
(domain/outbox_systems.py) to the store's printer.
"""

from __future__ import annotations

from dataclasses import dataclass

LABEL_WIDTH_MM, LABEL_HEIGHT_MM = 100, 150  # the courier standard 100 × 150 mm thermal label


@dataclass(frozen=True)
class Party:
    name: str
    phone: str  # printed masked on the label (138****5678): privacy waybill rules
    address: str


@dataclass(frozen=True)
class Label:
    order_no: str
    waybill: str  # printed as Code 128 and as a QR code
    courier: str  # the courier's company code, e.g. "YTO", "zhongtong"
    courier_name: str  # what people read, e.g. "圆通速递"
    sender: Party
    receiver: Party
    items: str = ""  # a short summary of the lines, e.g. "刹车片×2；机油滤芯×1"
    route_mark: str = ""  # the provider's sorting code (大头笔 / 三段码), printed large when given
    printed_at: str = ""  # local time text, e.g. "2026-11-30 10:42"


@dataclass(frozen=True)
class EncryptedPrint:
    """A provider's encrypted print document (Cainiao printData: encryptedData, signature, templateURL, ver),
    passed untouched to the provider's print component at the bench."""

    order_no: str
    waybill: str
    print_data: str  # the provider's JSON text, as received
