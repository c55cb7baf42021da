"""One customer: an order's customer found or created from the keys its channel gives (phone, OpenID, member
card, Douyin buyer, K3 customer number); keys that meet merge into one customer, audited per key; a conflict is
flagged to customer service as a 异常 and never guessed (domain/customers.py `meet` holds the rules).

A whole import batch is resolved at once: one read of the keys' owners, one of those customers, one insert each
of new customers and new keys; a single order is a batch of one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache

import phonenumbers

from domain import events
from domain.chat import Reply
from domain.commands import CreateOrder
from domain.customers import (
    CHANNEL_LABELS,
    FROM_KEYS,
    NAMED,
    Customer,
    Key,
    KnownCustomer,
    keys_in_order,
    meet,
    second_card,
)
from domain.order import Order
from domain.order_lifecycle import ORDER_LIFECYCLE
from handlers.bus import Deps
from handlers.notify import notify_role
from handlers.unit_of_work import AbstractUnitOfWork

SERVICE = "service"
CONFLICT = "customer_conflict"  # the 异常's kind
_MOBILE = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
OTHER_ORDERS_SHOWN = 5  # in `查询`; the API lists up to OTHER_ORDERS_LISTED
OTHER_ORDERS_LISTED = 20
_NEW_AGE = 10**12  # customers made in this batch are younger than any already stored


@lru_cache(maxsize=8192)  # an export repeats its buyers' numbers; parsing one costs ~30 µs
def normalise_phone(text: str) -> tuple[str, str]:
    """(E.164 form, "") for a mobile number (region CN unless it names another); ("", why) when it is no key."""
    text = text.strip()
    if not text:
        return "", ""
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return "", f"手机号 {text} 无效，未用来识别客户。"
    if not phonenumbers.is_valid_number(number):
        return "", f"手机号 {text} 无效，未用来识别客户。"
    if phonenumbers.number_type(number) not in _MOBILE:  # a landline is shared by a whole shop: not a person's key
        return "", f"电话 {text} 不是手机号，未用来识别客户。"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), ""


@dataclass(frozen=True)
class Asked:
    """One order's buyer as its command names them."""

    customer_id: str  # "" = find or create from the keys
    name: str
    phone: str  # as given (kept on the customer for people to read)
    keys: tuple[Key, ...]  # normalised, in the order a match is looked for
    phone_problem: str = ""  # why the given phone is no key


def asked(cmd: CreateOrder) -> Asked:
    phone_text = cmd.customer.phone or cmd.customer_phone
    phone, problem = normalise_phone(phone_text)
    return Asked(cmd.customer_id.strip(), cmd.customer_name or cmd.customer.name, phone_text,
                 keys_in_order(cmd.customer, phone), problem)


async def resolve(asks: list[Asked], uow: AbstractUnitOfWork, deps: Deps) -> list[str]:
    """Each order's customer id, in order; new customers, keys, merges and conflicts written in this unit of work."""
    wanted = [k for a in asks for k in a.keys]
    owners = await uow.customer_keys.owners(wanted)
    known = await uow.customers.known([*owners.values(), *(a.customer_id for a in asks if a.customer_id)])
    pending = {k.merged_into for k in known.values() if k.merged_into} - set(known)
    while pending:  # an id merged away: where it went (rare, and chains are short)
        more = await uow.customers.known(sorted(pending))
        known.update(more)
        pending = {k.merged_into for k in more.values() if k.merged_into} - set(known)
    run = _Run(owners, known)
    chosen = [run.order_customer(a) for a in asks]
    return await run.write(chosen, uow, deps)


async def record_refused_keys(pairs: list[tuple[Order, Asked]], uow: AbstractUnitOfWork) -> None:
    """A phone that is no key is said on the order's trail; the order itself went on."""
    uow.emit(*(events.CustomerKeyRefused(order.order_no, "phone", a.phone, a.phone_problem)
               for order, a in pairs if a.phone_problem))


@dataclass
class _Run:
    owners: dict[Key, str]  # key -> customer, as it stands in this batch
    known: dict[str, KnownCustomer]
    into: dict[str, str] = field(default_factory=dict)  # merged -> survivor
    new_named: list[Customer] = field(default_factory=list)
    new_keyed: dict[str, Customer] = field(default_factory=dict)  # by a stand-in id until numbered
    new_keys: dict[Key, str] = field(default_factory=dict)
    merges: list[tuple[str, str, Key]] = field(default_factory=list)  # stored customers merged: (merged, survivor, key)
    conflicts: list[tuple[str, str, Key]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.into = {cid: k.merged_into for cid, k in self.known.items() if k.merged_into}

    def final(self, cid: str) -> str:
        while cid in self.into:
            cid = self.into[cid]
        return cid

    def order_customer(self, a: Asked) -> str:
        return self._named(a) if a.customer_id else self._by_keys(a)

    def _named(self, a: Asked) -> str:
        """An id a system of record gave: the order is that customer's; free keys attach to it, keys of a customer
        orderbot made merge into it, keys of another named customer stay where they are."""
        cid = self.final(a.customer_id)
        if cid not in self.known:
            self.known[cid] = KnownCustomer(cid, a.name, NAMED, 0, set())
            self.new_named.append(Customer(cid, a.name, a.phone))
        for key in a.keys:
            owner = self.owners.get(key)
            if owner is None:
                self._attach(cid, key, a)
                continue
            owner = self.final(owner)
            if owner == cid or self.known[owner].origin == NAMED:
                continue
            meeting = meet([self.known[cid], self.known[owner]])
            if meeting.conflicts:
                self.conflicts.append((cid, owner, key))
                continue
            for merged in meeting.merged:
                self._merge(merged, meeting.survivor, key)
            cid = meeting.survivor  # an id orderbot made, named explicitly, may meet an older one
        return cid

    def _by_keys(self, a: Asked) -> str:
        matched: dict[str, Key] = {}  # customer -> the first key naming them, in key order
        for key in a.keys:
            owner = self.owners.get(key)
            if owner is not None:
                matched.setdefault(self.final(owner), key)
        if not matched:  # nobody yet, or no key at all (a guest: a customer of its own, never guessed to be another)
            cid = self._create(a)
        else:
            meeting = meet([self.known[cid] for cid in matched])
            cid = meeting.survivor
            self.conflicts.extend((first, second, matched[second]) for first, second in meeting.conflicts)
            for merged in meeting.merged:
                self._merge(merged, cid, matched[merged])
        for key in a.keys:
            if key not in self.owners:
                self._attach(cid, key, a)
        return cid

    def _create(self, a: Asked) -> str:
        stand_in = f"~{len(self.new_keyed)}"
        self.new_keyed[stand_in] = Customer(stand_in, a.name, a.phone)
        self.known[stand_in] = KnownCustomer(stand_in, a.name, FROM_KEYS, _NEW_AGE + len(self.new_keyed), set())
        return stand_in

    def _attach(self, cid: str, key: Key, a: Asked) -> None:
        customer = self.known[cid]
        if key[0] == "member_card" and second_card(customer, key[1], a.name):
            holder = self._create(a)  # the card is someone else's: they get a customer of their own, flagged
            self.conflicts.append((cid, holder, key))
            cid, customer = holder, self.known[holder]
        self.owners[key] = self.new_keys[key] = cid
        if key[0] == "member_card":
            customer.cards = (customer.cards or set()) | {key[1]}

    def _merge(self, merged: str, survivor: str, key: Key) -> None:
        self.into[merged] = survivor
        gone, kept = self.known[merged], self.known[survivor]
        kept.cards = (kept.cards or set()) | (gone.cards or set())
        kept.name = kept.name or gone.name
        if self.new_keyed.pop(merged, None) is None:  # made in this batch: it simply never reaches the database
            self.merges.append((merged, survivor, key))

    async def write(self, chosen: list[str], uow: AbstractUnitOfWork, deps: Deps) -> list[str]:
        numbers = dict(zip(self.new_keyed, await uow.customers.new_ids(len(self.new_keyed), deps.now), strict=True))

        def real(cid: str) -> str:
            cid = self.final(cid)
            return numbers.get(cid, cid)

        await uow.customers.create(self.new_named, NAMED, deps.now)
        await uow.customers.create([Customer(numbers[s], c.name, c.phone) for s, c in self.new_keyed.items()],
                                   FROM_KEYS, deps.now)
        for merged, survivor, key in self.merges:
            to = real(survivor)
            moved = await uow.customer_keys.move(merged, to)
            count = await uow.customers.merge(merged, to, deps.now)
            uow.emit(*(events.CustomerKeyMoved(kind, value, merged, to) for kind, value in moved),
                     events.CustomersMerged(merged, to, count, key))
        await uow.customer_keys.add([(key, real(cid)) for key, cid in self.new_keys.items()], deps.now)
        await _flag(sorted({(real(a), real(b), key) for a, b, key in self.conflicts}), uow, deps)
        return [real(cid) for cid in chosen]


async def _flag(conflicts: list[tuple[str, str, Key]], uow: AbstractUnitOfWork, deps: Deps) -> None:
    """One 异常 per pair of customers and key, pushed to customer service: they decide who is who."""
    if not conflicts:
        return
    marks = {_mark(c): c for c in conflicts}
    for mark in sorted(await uow.marks.once(list(marks), deps.now)):
        first, second, (kind, value) = marks[mark]
        text = (f"客户 {first} 与 {second} 共用{KIND_LABELS.get(kind, kind)} {value}，但名字或编号对不上，未合并；"
                f"订单先记在 {first} 名下，请核实是否同一人。")
        await uow.incidents.open(kind=CONFLICT, message=text, at=deps.now)
        await notify_role(uow, deps, SERVICE, Reply(f"客户冲突：{text}"), dedup_key=mark)


KIND_LABELS = {"phone": "手机号", "phone_index": "抖音手机号索引", "openid": "微信 OpenID", "unionid": "微信 UnionID",
               "member_card": "会员卡", "douyin_buyer": "抖音买家", "k3_customer": "K3 客户编码"}


def _mark(conflict: tuple[str, str, Key]) -> str:
    first, second, (kind, value) = conflict
    return "customer-conflict:" + hashlib.sha256(f"{first}\0{second}\0{kind}\0{value}".encode()).hexdigest()[:40]


async def other_orders_line(order: Order, uow: AbstractUnitOfWork) -> str:
    """"该客户其他订单：OB00000003(抖店·已发货) … 共N单", or "" when the customer has no other order."""
    total, others = await uow.customers.other_orders(order.customer_id, order.order_no, OTHER_ORDERS_SHOWN)
    if not total:
        return ""
    shown = " ".join(f"{o.order_no}({CHANNEL_LABELS.get(o.channel, o.channel)}·{ORDER_LIFECYCLE.label(o.state)})"
                     for o in others)
    return f"该客户其他订单：{shown}{' …' if total > len(others) else ''} 共{total}单"
