"""Domain refusals. Each carries a short Simplified Chinese reason a person can act on."""

from __future__ import annotations


class DomainError(Exception):
    code = "domain_error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IllegalTransition(DomainError):
    """A trigger that is not legal from the current state: a state-jump anomaly (状态跳变异常)."""

    code = "illegal_transition"


class GuardRefused(DomainError):
    """A legal trigger refused by a business rule (no waybill, address change pending, ...)."""

    code = "guard_refused"


class OutOfStock(DomainError):
    code = "out_of_stock"


class NotFound(DomainError):
    code = "not_found"


class Forbidden(DomainError):
    code = "forbidden"


class Conflict(DomainError):
    """Someone else changed the same record first; the caller should reload and try again."""

    code = "conflict"


class InvalidInput(DomainError):
    code = "invalid_input"
