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


Key = tuple[str, str]  # (kind, value): a name a channel gives a customer, e.g. ("phone", "+8613800000000")

# The kinds of key, in the order a match is looked for: an order whose keys name two customers that may not be
# merged goes to the customer its first key names.
KINDS = ("phone", "phone_index", "openid", "unionid", "member_card", "douyin_buyer", "k3_customer")
NAMED, FROM_KEYS = "named", "keys"  # a customer's origin: an id given by a system of record, or made by orderbot
NUMBER_PREFIX = "C"  # customers orderbot makes: C00000001, C00000002, ...

CHANNEL_LABELS = {"douyin": "抖店", "miniprogram": "小程序", "k3": "K3", "api": "API"}


def customer_number(seq: int) -> str:
    return f"{NUMBER_PREFIX}{seq:08d}"


def keys_in_order(keys: CustomerKeys, phone: str) -> tuple[Key, ...]:
    """The keys to match, in KINDS order; `phone` is the normalised phone ("" when it is no key)."""
    values = {"phone": phone, "phone_index": keys.phone_index, "openid": keys.openid, "unionid": keys.unionid,
              "member_card": keys.member_card, "douyin_buyer": keys.douyin_buyer, "k3_customer": keys.k3_customer}
    return tuple((kind, values[kind].strip()) for kind in KINDS if values[kind].strip())


@dataclass
class KnownCustomer:
    """A customer as resolution sees it: who may merge into whom."""

    customer_id: str
    name: str = ""
    origin: str = FROM_KEYS
    age: int = 0  # keys customers: their number (lower = known first); named customers: 0
    cards: set[str] | None = None  # member cards it holds
    merged_into: str | None = None


def same_name(a: str, b: str) -> bool:
    """Names that do not stop a merge: equal once spaces are ignored, or one of them unknown."""
    a, b = "".join(a.split()).casefold(), "".join(b.split()).casefold()
    return not a or not b or a == b


@dataclass(frozen=True)
class Meeting:
    """What becomes of customers that one order's keys name together."""

    survivor: str  # the order's customer
    merged: tuple[str, ...] = ()  # merged into the survivor
    conflicts: tuple[tuple[str, str], ...] = ()  # (survivor, a customer that must not be merged into it)


def meet(matched: list[KnownCustomer]) -> Meeting:
    """Keys that meet merge into one customer, unless that would guess:
    - two customers named by systems of record (REST, import, K3) are two customers, as those systems say;
    - customers with different names are not merged (one phone, two member cards of two people).
    `matched` is in the order the order's keys named them: the first match takes in each next one that fits the
    group so far; one that does not stays apart as a conflict. Of the group, a named customer survives (its id
    is known outside), else the one orderbot knew first."""
    group = [matched[0]]
    apart: list[KnownCustomer] = []
    for m in matched[1:]:
        name = next((g.name for g in group if g.name), "")
        named_twice = m.origin == NAMED and any(g.origin == NAMED for g in group)
        (apart if named_twice or not same_name(name, m.name) else group).append(m)
    named = [g for g in group if g.origin == NAMED]
    survivor = named[0] if named else min(group, key=lambda g: g.age)
    return Meeting(survivor.customer_id, tuple(g.customer_id for g in group if g is not survivor),
                   tuple((survivor.customer_id, a.customer_id) for a in apart))


def second_card(customer: KnownCustomer, card: str, name: str) -> bool:
    """A member card that would give this customer a second card under another person's name: a conflict."""
    return bool(customer.cards) and card not in (customer.cards or set()) and not same_name(customer.name, name)


@dataclass(frozen=True)
class OtherOrder:
    """One of a customer's other orders, as `查询` and the API list them."""

    order_no: str
    channel: str
    state: str
