"""Delivery of outbox rows: the dispatcher, per-recipient rate limits with digests, the senders, the retry policy
with a breaker per channel, and the managers' digest of rows that could not be delivered."""

from integrations.delivery.dead_rows import DeadRowWarnings
from integrations.delivery.dispatcher import (
    DeferDelivery,
    OutboxDispatcher,
    OutboxRow,
    PermanentDelivery,
    RetryableDelivery,
    Sender,
)
from integrations.delivery.retry import CircuitBreaker, RetryPolicy

__all__ = [
    "CircuitBreaker",
    "DeadRowWarnings",
    "DeferDelivery",
    "OutboxDispatcher",
    "OutboxRow",
    "PermanentDelivery",
    "RetryPolicy",
    "RetryableDelivery",
    "Sender",
]
