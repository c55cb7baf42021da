"""The wire form of domain events: a stable name per event type and a JSON payload from the frozen dataclass.

Subscribers outside (purchasing, production, delivery planning) read these names and fields, so they are a
contract: rename a Python class freely, never a wire name. Every Event subclass has a name here (a test
walks them all).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from domain import events as e
from domain import facts as f
from domain import stores as s
from domain import waybills as w

WIRE_NAMES: dict[type[e.Event], str] = {
    e.OrderCreated: "order.created",
    e.OrderImported: "order.imported",
    e.OrderStateChanged: "order.state_changed",
    e.TriggerRefused: "order.trigger_refused",
    e.CustomerKeyRefused: "order.customer_key_refused",
    e.CustomerKeyMoved: "customer.key_moved",
    e.CustomersMerged: "customer.merged",
    e.OrderAllocated: "order.allocated",
    e.OrderOutOfStock: "order.out_of_stock",
    e.OrderShipped: "order.shipped",
    e.OrderCancelled: "order.cancelled",
    e.AddressChanged: "order.address_changed",
    e.AddressChangeRefused: "order.address_change_refused",
    e.RelabelConfirmed: "order.relabel_confirmed",
    e.AfterSaleOpened: "aftersale.opened",
    e.AfterSaleStateChanged: "aftersale.state_changed",
    e.RefundApproved: "aftersale.refund_approved",
    e.RefundRejected: "aftersale.refund_rejected",
    e.ApprovalRecorded: "aftersale.approval_recorded",
    f.IncidentAcknowledged: "incident.acknowledged",
    f.IncidentResolved: "incident.resolved",
    f.SettlementHeld: "customer.settlement_held",
    f.SettlementReleased: "customer.settlement_released",
    f.SmsOptOutSet: "customer.sms_opt_out_set",
    f.StockSet: "inventory.stock_set",
    f.SkuRegistered: "sku.registered",
    f.ChannelFrozen: "sku.channel_frozen",
    f.ChannelUnfrozen: "sku.channel_unfrozen",
    f.AccountSwitched: "user.account_switched",
    f.AccountSaved: "user.account_saved",
    f.SenderRefused: "user.sender_refused",
    s.StoreSaved: "store.saved",
    w.WaybillIssued: "order.waybill_issued",
}

WIRE_NAME = re.compile(r"^[a-z][a-z_]*\.[a-z][a-z_]*$")  # also a valid pair of NATS subject tokens


@dataclass(frozen=True)
class WireEvent:
    """What is stored for one event in the transaction that raised it; the store adds id, time and actor."""

    type: str
    order_no: str | None  # the order it concerns, where the event names one (subscribers order by it)
    data: dict[str, Any]
    actor: str = ""  # set where a rule, not the command's sender, acted (as on the audit line)
    via: str = ""


def wire_name(event: e.Event) -> str:
    """The event's stable name; a class that has none yet gets `other.<snake_case>` rather than being lost."""
    name = WIRE_NAMES.get(type(event))
    if name is not None:
        return name
    return "other." + re.sub(r"(?<!^)(?=[A-Z])", "_", type(event).__name__).lower()


def to_wire(event: e.Event) -> WireEvent:
    data: dict[str, Any] = {}
    if dataclasses.is_dataclass(event):
        data = {fld.name: jsonable(getattr(event, fld.name)) for fld in dataclasses.fields(event)}
    order_no = data.get("order_no")
    change = event.change() if isinstance(event, e.Audited) else None
    return WireEvent(
        type=wire_name(event),
        order_no=order_no if isinstance(order_no, str) else None,
        data=data,
        actor=change.actor if change is not None else "",
        via=change.via if change is not None else "",
    )


def jsonable(value: Any) -> Any:
    """A field value as JSON: mappings → objects, tuples → arrays, times → ISO 8601, money as strings."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {fld.name: jsonable(getattr(value, fld.name)) for fld in dataclasses.fields(value)}
    return str(value)
