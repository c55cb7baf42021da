"""An incident (异常): an order or SKU problem that waits for a person to acknowledge and resolve it.

Named Incident, not Exception: a business problem is not a Python exception. Stored in the `exceptions` table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"


@dataclass
class Incident:
    kind: str  # out_of_stock, stuck_order, logistics_conflict, slow_mover, frozen_channel_order, ...
    message: str
    opened_at: datetime
    order_no: str | None = None
    sku: str | None = None
    store: str | None = None
    severity: str = "warning"  # warning | critical
    id: int = 0  # given by the repository when the incident is opened
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    resolution: str = ""

    @property
    def status(self) -> str:
        if self.resolved_at is not None:
            return RESOLVED
        return ACKNOWLEDGED if self.acknowledged_at is not None else OPEN

    def acknowledge(self, by: str, at: datetime) -> None:
        """The caller has checked it is open and unclaimed (its refusal names people, which needs a lookup)."""
        self.acknowledged_by, self.acknowledged_at = by, at

    def resolve(self, by: str, at: datetime, note: str) -> str:
        """Resolving an unclaimed incident claims it too. Returns the status it had."""
        before = self.status
        if self.acknowledged_at is None:
            self.acknowledge(by, at)
        self.resolved_by, self.resolved_at, self.resolution = by, at, note
        return before
