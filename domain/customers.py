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
    sms_opt_out: bool = False  # asked for no text messages: their texts are skipped, not sent


def masked_phone(phone: str) -> str:
    """A phone number as logs and chat may show it: 13812341234 → 138****1234 (short ones keep less)."""
    digits = phone.strip()
    if len(digits) >= 7:
        return digits[:3] + "****" + digits[-4:]
    return "*" * len(digits)


@dataclass(frozen=True)
class CustomerKeys:
    """What a channel knows of its buyer, as the channel gives it. No channel sends orderbot's own customer id:
    the customer is found or created from these keys (see handlers/orders). Empty means "not given".

    Douyin fields may be the platform's ciphertext (encrypt_*): kept as given, matched through the platform's
    search index, never decrypted into storage."""

    phone: str = ""  # mobile number as given (normalised before matching)
    phone_index: str = ""  # Douyin's search index of an encrypted phone (matches without decrypting)
    openid: str = ""  # WeChat mini-program OpenID
    unionid: str = ""  # WeChat UnionID
    member_card: str = ""  # the chain's member-card number
    douyin_buyer: str = ""  # Douyin's buyer id (doudian_open_id)
    k3_customer: str = ""  # K3 Cloud customer number (FCustId.FNumber)
    name: str = ""

    def any(self) -> bool:
        return any((self.phone, self.phone_index, self.openid, self.unionid, self.member_card, self.douyin_buyer,
                    self.k3_customer))
