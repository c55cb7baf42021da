"""Delivery of outbox rows: the dispatcher, per-recipient rate limits with digests, and the senders."""

from integrations.delivery.dispatcher import (
    DeferDelivery,
    OutboxDispatcher,
    OutboxRow,
    PermanentDelivery,
    RetryableDelivery,
    Sender,
    tell_admins_about_dead_row,
)

__all__ = [
    "DeferDelivery",
    "OutboxDispatcher",
    "OutboxRow",
    "PermanentDelivery",
    "RetryableDelivery",
    "Sender",
    "tell_admins_about_dead_row",
]
