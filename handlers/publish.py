"""Publication of domain events to the order event bus: the bus stores every event of a unit of work, in its
wire form, in that unit of work's transaction; integrations/events delivers them after commit.

Stored, not sent: a subscriber (a webhook, JetStream) hears of a change only once it has committed, and a
change that commits is never without its event, whatever dies afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain import events as e
from domain.event_wire import WireEvent, to_wire
from handlers.unit_of_work import AbstractUnitOfWork


async def store_events(events: Sequence[e.Event], uow: AbstractUnitOfWork, at: datetime) -> None:
    """Every event, of every type, in the order it was raised — a record's creation before the steps that
    were part of it."""
    await uow.store_events(wire_events(events), at)


def wire_events(events: Sequence[e.Event]) -> list[WireEvent]:
    """The events as stored, in the order `store_events` stores them."""
    return [to_wire(event) for event in creation_first(events)]


def creation_first(events: Sequence[e.Event]) -> list[e.Event]:
    """An order created paid raises "paid" before "created" (its trail has one line for both); a subscriber
    must hear of the order before anything happens to it, so the creation moves ahead of those steps.
    One pass (an import's unit of work holds thousands of events): each creation goes just before the first
    step that was part of it, when that step came first."""
    first_part: dict[tuple[str, str], int] = {}
    for i, event in enumerate(events):
        part = _part_of(event)
        if part is not None:
            first_part.setdefault(part, i)
    moved: dict[int, list[e.Event]] = {}  # index of a first step → the creations that go just before it
    for i, event in enumerate(events):
        key = _created(event)
        if key is not None and first_part.get(key, i) < i:
            moved.setdefault(first_part[key], []).append(event)
    moving = {id(event) for group in moved.values() for event in group}
    ordered: list[e.Event] = []
    for i, event in enumerate(events):
        ordered.extend(moved.get(i, ()))
        if id(event) not in moving:
            ordered.append(event)
    return ordered


def _created(event: e.Event) -> tuple[str, str] | None:
    if isinstance(event, e.OrderCreated):
        return ("order", event.order_no)
    if isinstance(event, e.AfterSaleOpened):
        return ("aftersale", event.aftersale_no)
    return None


def _part_of(event: e.Event) -> tuple[str, str] | None:
    if isinstance(event, e.OrderStateChanged) and event.part_of_creation:
        return ("order", event.order_no)
    if isinstance(event, e.AfterSaleStateChanged) and event.part_of_creation:
        return ("aftersale", event.aftersale_no)
    return None
