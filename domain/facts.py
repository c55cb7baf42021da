"""Facts about records other than orders and after-sales (异常, settlement holds, stock, SKU freezes, staff
accounts), raised by their use cases with `uow.emit`; each leaves its line on the audit trail."""

from __future__ import annotations

from dataclasses import dataclass

from domain.events import Audited, Change


@dataclass(frozen=True)
class IncidentAcknowledged(Audited):
    incident_id: int
    kind: str
    order_no: str | None

    def change(self) -> Change:
        return Change("exception", str(self.incident_id), "ack", "open", "acknowledged",
                      detail={"order_no": self.order_no, "kind": self.kind})


@dataclass(frozen=True)
class IncidentResolved(Audited):
    incident_id: int
    kind: str
    order_no: str | None
    from_state: str
    note: str

    def change(self) -> Change:
        return Change("exception", str(self.incident_id), "resolve", self.from_state, "resolved", reason=self.note,
                      detail={"order_no": self.order_no, "kind": self.kind})


@dataclass(frozen=True)
class SettlementHeld(Audited):
    customer_id: str
    reason: str
    actor: str
    via: str

    def change(self) -> Change:
        return Change("customer", self.customer_id, "settlement_hold", reason=self.reason, actor=self.actor,
                      via=self.via)


@dataclass(frozen=True)
class SettlementReleased(Audited):
    customer_id: str
    hold_reason: str

    def change(self) -> Change:
        return Change("customer", self.customer_id, "release", "held", "released", reason=self.hold_reason)


@dataclass(frozen=True)
class StockSet(Audited):
    store: str
    sku: str
    before: int | None
    on_hand: int

    def change(self) -> Change:
        return Change("inventory", f"{self.store}/{self.sku}", "set_stock",
                      detail={"from": self.before, "to": self.on_hand})


@dataclass(frozen=True)
class SkuRegistered(Audited):
    sku: str
    name: str
    replenish_threshold: int
    lead_time_days: int

    def change(self) -> Change:
        return Change("sku", self.sku, "register_sku", detail={
            "name": self.name, "replenish_threshold": self.replenish_threshold, "lead_time_days": self.lead_time_days})


@dataclass(frozen=True)
class ChannelFrozen(Audited):
    sku: str
    channel: str
    reason: str
    actor: str
    via: str

    def change(self) -> Change:
        return Change("sku", self.sku, "freeze", reason=self.reason, detail={"channel": self.channel},
                      actor=self.actor, via=self.via)


@dataclass(frozen=True)
class ChannelUnfrozen(Audited):
    sku: str
    channel: str

    def change(self) -> Change:
        return Change("sku", self.sku, "unfreeze", detail={"channel": self.channel})


@dataclass(frozen=True)
class AccountSwitched(Audited):
    userid: str
    active: bool
    was_active: bool

    def change(self) -> Change:
        state = {True: "active", False: "disabled"}
        return Change("user", self.userid, "enable" if self.active else "disable",
                      state[self.was_active], state[self.active])


@dataclass(frozen=True)
class AccountSaved(Audited):
    userid: str
    created: bool
    roles: tuple[str, ...]
    store: str | None

    def change(self) -> Change:
        return Change("user", self.userid, "add_user" if self.created else "update_user",
                      detail={"roles": list(self.roles), "store": self.store})


@dataclass(frozen=True)
class SenderRefused(Audited):
    """Someone who is no (active) user wrote to the bot."""

    sender: str
    action: str
    reason: str

    def change(self) -> Change:
        return Change("user", self.sender, self.action, outcome="refused", reason=self.reason)


@dataclass(frozen=True)
class SmsOptOutSet(Audited):
    """A customer's text messages stopped (停发) or resumed (恢复)."""

    customer_id: str
    opt_out: bool
    was: bool

    def change(self) -> Change:
        state = {True: "sms_opt_out", False: "sms_on"}
        return Change("customer", self.customer_id, "sms_stop" if self.opt_out else "sms_resume",
                      state[self.was], state[self.opt_out])
