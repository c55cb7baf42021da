"""Commands: what someone asks the system to do, in the imperative. `by` is the actor, `via` the channel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:  # both modules define commands on top of this one; the others are what handlers return
    from domain.aftersale import AfterSale  # noqa: F401 (named in the Command[...] strings below)
    from domain.arbitration import CourierReport
    from domain.inventory import Stock  # noqa: F401
    from domain.order import Order  # noqa: F401
    from domain.safety_stock import SafetyStockPolicy

from domain.consistency import SourceCount, Window
from domain.customers import Customer, CustomerKeys  # noqa: F401 (Customer: named in a Command[...] string)
from domain.limits import AUDIT_ENTITY_ID_CHARS

R = TypeVar("R")


class Command(Generic[R]):
    """`R` is what the bus returns for it. `subject` and `action` name it in the audit trail."""

    by: str
    via: str

    def subject(self) -> tuple[str, str]:
        return "system", ""

    def action(self) -> str:
        return type(self).__name__


class OrderCommand(Command[R]):
    order_no: str

    def subject(self) -> tuple[str, str]:
        return "order", self.order_no


@dataclass(frozen=True)
class LineInput:
    sku: str
    qty: int
    unit_price_fen: int
    name: str = ""


@dataclass(frozen=True)
class CreateOrder(Command["tuple[Order, bool]"]):
    channel: str
    external_id: str
    customer_id: str
    address: str
    lines: tuple[LineInput, ...]
    paid: bool
    by: str
    via: str
    store: str | None = None
    customer_name: str = ""
    customer_phone: str = ""
    customer: CustomerKeys = CustomerKeys()  # the channel's keys of the buyer; customer_id "" = find by these

    def subject(self) -> tuple[str, str]:
        return "order", self.external_id


@dataclass(frozen=True)
class ImportedOrder:
    """One order of an export file; `state` and `created_at` are given for a closed (historical) order."""

    order: CreateOrder
    state: str | None = None  # completed | cancelled, with --history
    created_at: datetime | None = None


@dataclass(frozen=True)
class ImportShortages:
    """The orders of one import that no store could fill, reported as ONE 异常: carried from batch to batch,
    each batch updating the same incident (so a stopped import has still reported what it found)."""

    incident_id: int = 0  # 0: none opened yet
    count: int = 0
    first: tuple[str, ...] = ()  # the first few order numbers, for the 异常's text
    source: str = ""  # the file's name


@dataclass(frozen=True)
class ImportOutcome:
    created: tuple[str, ...]  # external ids
    duplicates: tuple[str, ...]
    refused: tuple[tuple[str, str], ...]  # (external id, reason)
    shortages: ImportShortages


@dataclass(frozen=True)
class ImportOrders(Command[ImportOutcome]):
    """One batch of an export in one unit of work: orders already known are counted, not changed; an order
    the domain refuses is reported and the others go on. With `history`, orders are stored closed, as given:
    no stock is reserved and nobody is told."""

    channel: str
    orders: tuple[ImportedOrder, ...]
    history: bool
    shortages: ImportShortages
    by: str
    via: str

    def subject(self) -> tuple[str, str]:
        return "import", self.shortages.source[:AUDIT_ENTITY_ID_CHARS]


@dataclass(frozen=True)
class AnnounceImportShortages(Command[None]):
    """The one push to supervisors for an import's stock shortages, sent when the import has finished."""

    shortages: ImportShortages
    by: str
    via: str


@dataclass(frozen=True)
class FireOrderTrigger(OrderCommand["Order"]):
    """pay, pick, check, pack, ship, pick_up, deliver, report_exception, resolve_exception, complete, cancel."""

    order_no: str
    trigger: str
    by: str
    via: str
    waybill: str | None = None
    reason: str = ""

    def action(self) -> str:
        return self.trigger


@dataclass(frozen=True)
class ChangeAddress(OrderCommand["Order"]):
    order_no: str
    new_address: str
    by: str
    via: str


@dataclass(frozen=True)
class ConfirmRelabel(OrderCommand["Order"]):
    order_no: str
    waybill: str
    by: str
    via: str


@dataclass(frozen=True)
class SetStock(Command["Stock"]):
    store: str
    sku: str
    on_hand: int
    by: str
    via: str

    def subject(self) -> tuple[str, str]:
        # a 32-character store and a 64-character SKU would overflow the audit's entity id; the row keeps both
        return "inventory", f"{self.store}/{self.sku}"[:AUDIT_ENTITY_ID_CHARS]


@dataclass(frozen=True)
class OpenAfterSale(OrderCommand["AfterSale"]):
    order_no: str
    kind: str
    reason: str
    amount_fen: int
    by: str
    via: str
    photos: tuple[str, ...] = ()  # links to the customer's pictures (https), kept on the audit trail


class AfterSaleCommand(Command[R]):
    aftersale_no: str

    def subject(self) -> tuple[str, str]:
        return "aftersale", self.aftersale_no


@dataclass(frozen=True)
class ApproveAfterSale(AfterSaleCommand["tuple[AfterSale, bool]"]):
    aftersale_no: str
    by: str
    via: str


@dataclass(frozen=True)
class RejectAfterSale(AfterSaleCommand["AfterSale"]):
    aftersale_no: str
    by: str
    via: str
    reason: str = ""


@dataclass(frozen=True)
class FireOrderTriggers(Command[Any]):
    """One trigger for many orders in one unit of work: a scanned wave, a courier pickup, a tracking sweep.

    Each order is checked on its own: refusals are reported per order and do not stop the others.
    """

    order_nos: tuple[str, ...]
    trigger: str
    by: str
    via: str
    waybills: tuple[tuple[str, str], ...] = ()  # (order_no, waybill) where the trigger fills one

    def action(self) -> str:
        return self.trigger


# ---- scheduled jobs: the scheduler (or `orderbot jobs run`) sends these through the bus like any command


@dataclass(frozen=True)
class SweepLogistics(Command[Any]):
    """Arbitrate every trackable order against its courier track; poll the few with no pushed track."""

    batch_size: int = 1000
    concurrency: int = 200  # parallel HTTP polls of the fallback
    batches_in_flight: int = 4
    fallback_after: timedelta = timedelta(hours=6)  # a waybill with no pushed track by then is polled
    fallback_limit: int = 200  # at most this many HTTP polls per sweep, oldest first
    by: str = "logistics_sweep"
    via: str = "job"


@dataclass(frozen=True)
class RecordCourierTracks(Command[Any]):
    """Keep the latest report per waybill (a push, or what a fallback poll found); never an older one."""

    tracks: tuple[tuple[CourierReport, str], ...]  # (report, carrier)
    by: str = "logistics_sweep"
    via: str = "job"


@dataclass(frozen=True)
class FlagStuckOrders(Command[Any]):
    """Tell the responsible person about each order past its state's SLA, once per order and state."""

    sla_minutes: tuple[tuple[str, int], ...]  # (state, minutes)
    by: str = "stuck_orders"
    via: str = "job"


@dataclass(frozen=True)
class EscalateIncidents(Command[Any]):
    """Open incidents nobody acknowledged within `ack_minutes` go to the managers, each once."""

    ack_minutes: int
    by: str = "escalation"
    via: str = "job"


@dataclass(frozen=True)
class EvaluateSafetyStock(Command[Any]):
    """The hourly safety-stock evaluation: replenishment suggestions, channel freezes, slow movers."""

    policy: SafetyStockPolicy
    by: str = "safety_stock"
    via: str = "job"


@dataclass(frozen=True)
class ParkChannelOrders(Command[int]):
    """A channel's orders that could not become orders (a field that cannot be mapped, or refused by the domain):
    one 异常 lists them, each bill once; the pull goes on without them."""

    channel: str
    parked: tuple[tuple[str, str], ...]  # (external id, reason)
    by: str
    via: str


@dataclass(frozen=True)
class ScoreConsistency(Command[Any]):
    """Compare what each channel's system holds in `window` with orderbot's copy; store the score; with `alert`,
    warn the managers once when it drops below `threshold` and tell them when it is back."""

    window: Window
    sources: tuple[SourceCount, ...]
    threshold: float
    shown_ids: int
    alert: bool
    by: str = "consistency"
    via: str = "job"


@dataclass(frozen=True)
class SetSmsOptOut(Command["Customer"]):
    """A customer asks for no more text messages (opt_out) or for them again; returns the customer as it is now."""

    customer: str  # the customer id, any letter case
    opt_out: bool
    by: str
    via: str

    def subject(self) -> tuple[str, str]:
        return "customer", self.customer[:AUDIT_ENTITY_ID_CHARS]
