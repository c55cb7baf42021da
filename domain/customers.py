"""A customer as orderbot keeps it: the buyer behind orders, and whether their settlement is on hold."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Customer:
    customer_id: str
    name: str = ""
    phone: str = ""
    settlement_hold: bool = False
    hold_reason: str = ""
