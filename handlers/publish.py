"""Publication of domain events to the order event bus: the bus stores every event of a unit of work, in its
wire form, in that unit of work's transaction; integrations/events delivers them after commit.

Stored, not sent: a subscriber (a webhook, JetStream) hears of a change only once it has committed, and a
change that commits is never without its event, whatever dies afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.event_wire import to_wire
from domain.events import Event
from handlers.unit_of_work import AbstractUnitOfWork


async def store_events(events: Sequence[Event], uow: AbstractUnitOfWork, at: datetime) -> None:
    """Every event, of every type, in the order it was raised."""
    await uow.store_events([to_wire(event) for event in events], at)
