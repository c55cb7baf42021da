"""Domain events: facts in the past tense, collected from aggregates and handled in the same unit of work."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Event:
    pass


@dataclass(frozen=True)
class Change:
    """One line of the audit trail: who (the command's sender, unless `actor` says otherwise), when, through
    what, on which record, from → to."""

    entity: str  # order | aftersale | exception | customer | sku | inventory | user
    entity_id: str
    action: str
    from_state: str | None = None
    to_state: str | None = None
    outcome: str = "ok"  # ok | refused
    reason: str = ""
    detail: Mapping[str, Any] | None = field(default=None, compare=False)
    actor: str = ""  # set only where someone other than the command's sender acted (a rule: "system")
    via: str = ""


class Audited(Event):
    """A fact that changes a record, and so leaves a line on its trail. Use cases never write that line: the
    bus turns every Audited event of a unit of work into its line, in the same transaction."""

    def change(self) -> Change | None:
        """The line it leaves; None where another event of the same moment already says it."""
        raise NotImplementedError


@dataclass(frozen=True)
class OrderCreated(Audited):
    order_no: str
    channel: str
    state: str
    external_id: str = field(default="", compare=False)

    def change(self) -> Change:
        return Change("order", self.order_no, "create", None, self.state,
                      detail={"channel": self.channel, "external_id": self.external_id})


@dataclass(frozen=True)
class OrderImported(Audited):
    """A closed order of an old export (`orderbot orders import --history`), stored in the state the export
    gives. Nothing reacts to it: no stock is reserved and nobody is told."""

    order_no: str
    channel: str
    state: str
    external_id: str = field(default="", compare=False)

    def change(self) -> Change:
        return Change("order", self.order_no, "import", None, self.state,
                      detail={"channel": self.channel, "external_id": self.external_id, "history": True})


@dataclass(frozen=True)
class CustomerKeyMoved(Audited):
    """A key of a merged customer now names the surviving one (one line per key)."""

    kind: str
    value: str
    from_customer: str
    to_customer: str

    def change(self) -> Change:
        return Change("customer", self.to_customer, "merge_key", self.from_customer, self.to_customer,
                      detail={"kind": self.kind, "value": self.value})


@dataclass(frozen=True)
class CustomersMerged(Audited):
    """Keys that met: `merged`'s orders now belong to `survivor`."""

    merged: str
    survivor: str
    orders_moved: int
    key: tuple[str, str] = ("", "")  # the key of the order that made them meet

    def change(self) -> Change:
        return Change("customer", self.merged, "merge", self.merged, self.survivor,
                      detail={"orders_moved": self.orders_moved, "kind": self.key[0], "value": self.key[1]})


@dataclass(frozen=True)
class CustomerKeyRefused(Audited):
    """An order's customer key that names nobody (a phone that is no valid mobile number); the order went on."""

    order_no: str
    kind: str
    value: str
    reason: str

    def change(self) -> Change:
        return Change("order", self.order_no, "customer_key", None, None, outcome="refused", reason=self.reason,
                      detail={"kind": self.kind, "value": self.value})


@dataclass(frozen=True)
class OrderStateChanged(Audited):
    order_no: str
    trigger: str
    from_state: str
    to_state: str
    reason: str = field(default="", compare=False)
    detail: Mapping[str, Any] | None = field(default=None, compare=False)  # what the trigger set: waybill, store…
    part_of_creation: bool = field(default=False, compare=False)  # an order created paid: its `create` line already says so

    def change(self) -> Change | None:
        if self.part_of_creation:
            return None
        return Change("order", self.order_no, self.trigger, self.from_state, self.to_state, reason=self.reason,
                      detail=self.detail)


@dataclass(frozen=True)
class TriggerRefused(Audited):
    """One order of a batch (a scanned wave, a sweep) refused a trigger; the others went on."""

    order_no: str
    trigger: str
    state: str
    reason: str

    def change(self) -> Change:
        return Change("order", self.order_no, self.trigger, self.state, None, outcome="refused", reason=self.reason)


@dataclass(frozen=True)
class OrderAllocated(Event):
    order_no: str
    store: str


@dataclass(frozen=True)
class OrderOutOfStock(Event):
    order_no: str
    skus: tuple[str, ...]


@dataclass(frozen=True)
class OrderShipped(Event):
    """Entering `shipped` binds: fill the waybill, text the customer, create the receivable."""

    order_no: str
    waybill: str
    store: str | None
    items: tuple[tuple[str, int], ...]
    customer_id: str
    customer_phone: str
    amount_fen: int


@dataclass(frozen=True)
class OrderCancelled(Event):
    order_no: str
    store: str | None
    items: tuple[tuple[str, int], ...]
    was_reserved: bool


@dataclass(frozen=True)
class AddressChanged(Audited):
    order_no: str
    old_address: str
    new_address: str
    needs_relabel: bool
    voided_waybill: str | None
    state: str = field(default="", compare=False)  # for the audit line

    def change(self) -> Change:
        return Change("order", self.order_no, "change_address", self.state, self.state,
                      detail={"old_address": self.old_address, "new_address": self.new_address})


@dataclass(frozen=True)
class AddressChangeRefused(Audited):
    """The new address did not resolve on the map: the order keeps its address."""

    order_no: str
    state: str
    reason: str
    detail: Mapping[str, Any] = field(compare=False)

    def change(self) -> Change:
        return Change("order", self.order_no, "change_address", self.state, self.state, outcome="refused",
                      reason=self.reason, detail=self.detail)


@dataclass(frozen=True)
class RelabelConfirmed(Audited):
    order_no: str
    state: str
    waybill: str

    def change(self) -> Change:
        return Change("order", self.order_no, "confirm_relabel", self.state, self.state,
                      detail={"waybill": self.waybill})


@dataclass(frozen=True)
class AfterSaleOpened(Audited):
    aftersale_no: str
    order_no: str
    amount_fen: int
    needs_approval: bool
    kind: str = field(default="", compare=False)
    category: str = field(default="", compare=False)
    needs_manager: bool = field(default=False, compare=False)  # the order's total with it is above the dual line
    order_claimed_fen: int = field(default=0, compare=False)  # what the order's earlier after-sales claim
    photos: tuple[str, ...] = field(default=(), compare=False)  # the customer's pictures (links), when given

    def change(self) -> Change:
        to_state = "pending_approval" if self.needs_approval else "approved"
        detail: dict[str, object] = {
            "order_no": self.order_no, "kind": self.kind, "amount_fen": self.amount_fen, "category": self.category,
            "order_claimed_fen": self.order_claimed_fen}
        if self.photos:
            detail["photos"] = list(self.photos)
        return Change("aftersale", self.aftersale_no, "open", None, to_state, detail=detail)


@dataclass(frozen=True)
class AfterSaleStateChanged(Audited):
    aftersale_no: str
    trigger: str
    from_state: str
    to_state: str
    reason: str = field(default="", compare=False)
    part_of_creation: bool = field(default=False, compare=False)  # submit / auto_approve: the `open` line says it

    def change(self) -> Change | None:
        if self.part_of_creation:
            return None
        return Change("aftersale", self.aftersale_no, self.trigger, self.from_state, self.to_state, reason=self.reason)


@dataclass(frozen=True)
class RefundApproved(Event):
    aftersale_no: str
    order_no: str
    amount_fen: int
    approvers: tuple[str, ...]


@dataclass(frozen=True)
class RefundRejected(Event):
    aftersale_no: str
    order_no: str
    by: str
    reason: str


@dataclass(frozen=True)
class ApprovalRecorded(Audited):
    """A first approval of a large refund; a manager's approval is still needed."""

    aftersale_no: str
    by: str
    still_needs: str

    def change(self) -> Change:
        return Change("aftersale", self.aftersale_no, "first_approval", "pending_approval", "pending_approval")
