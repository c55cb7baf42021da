"""The message bus: a command has one handler, an event any number; all run in one unit of work."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError

from domain.aftersale import ApprovalPolicy
from domain.clock import utcnow
from domain.commands import Command
from domain.errors import Conflict, DomainError, IllegalTransition
from domain.events import Event
from handlers.metrics import COMMANDS_REFUSED, STATE_JUMP_ANOMALIES
from integrations.db.uow import UnitOfWork
from integrations.geo import AddressValidator
from integrations.logistics.kuaidi100 import CourierTracking

log = logging.getLogger(__name__)


@dataclass
class Deps:
    """What handlers need besides the unit of work; built once at start-up."""

    clock: Callable[[], datetime] = utcnow
    policy: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    address_validator: AddressValidator | None = None  # None: addresses are not validated (no geo key)
    courier: CourierTracking | None = None  # the logistics sweep's fallback poll; None: no polling
    # a job's steps, each in its own unit of work (build_bus sets it to the bus's `handle`)
    dispatch: Callable[[Command], Awaitable[Any]] | None = None

    @property
    def now(self) -> datetime:
        return self.clock()


CommandHandler = Callable[[Any, UnitOfWork, Deps], Awaitable[Any]]
EventHandler = Callable[[Any, UnitOfWork, Deps], Awaitable[None]]
BatchEventHandler = Callable[[list[Any], UnitOfWork, Deps], Awaitable[None]]
H = TypeVar("H", bound=Callable[..., Awaitable[Any]])


class Router:
    """Handlers registered by decorator; routers are composed explicitly into the bus."""

    def __init__(self) -> None:
        self.commands: dict[type[Command], CommandHandler] = {}
        self.events: dict[type[Event], list[EventHandler]] = {}
        self.batch_events: dict[type[Event], list[BatchEventHandler]] = {}

    def command(self, kind: type[Command]) -> Callable[[H], H]:
        def register(handler: H) -> H:
            if kind in self.commands:
                raise ValueError(f"{kind.__name__} already has a handler")
            self.commands[kind] = handler
            return handler

        return register

    def event(self, kind: type[Event]) -> Callable[[H], H]:
        def register(handler: H) -> H:
            self.events.setdefault(kind, []).append(handler)
            return handler

        return register

    def events_of(self, kind: type[Event]) -> Callable[[H], H]:
        """A reaction that takes every event of `kind` from one unit of work at once (a wave of 100
        shipments is one executemany, not 100 statements)."""

        def register(handler: H) -> H:
            self.batch_events.setdefault(kind, []).append(handler)
            return handler

        return register


class MessageBus:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], deps: Deps, *routers: Router) -> None:
        self.uow_factory = uow_factory
        self.deps = deps
        self.commands: dict[type[Command], CommandHandler] = {}
        self.events: dict[type[Event], list[EventHandler]] = {}
        self.batch_events: dict[type[Event], list[BatchEventHandler]] = {}
        for router in routers:
            for kind, handler in router.commands.items():
                if kind in self.commands:
                    raise ValueError(f"{kind.__name__} has two handlers")
                self.commands[kind] = handler
            for event_kind, handlers in router.events.items():
                self.events.setdefault(event_kind, []).extend(handlers)
            for event_kind, batch_handlers in router.batch_events.items():
                self.batch_events.setdefault(event_kind, []).extend(batch_handlers)

    async def handle(self, command: Command) -> Any:
        """Run the command and the reactions to its events in one transaction, then commit."""
        handler = self.commands[type(command)]
        prepare = getattr(command, "prepare", None)
        if prepare is not None:  # look-ups over the network (a geocoder) happen before any transaction opens
            command = await prepare(self.deps)
        for attempt in (1, 2):
            try:
                async with self.uow_factory() as uow:
                    result = await handler(command, uow, self.deps)
                    await self._react(uow)
                    await uow.commit()
                    return result
            except IntegrityError as err:
                # a concurrent twin (same channel + external id, same message id) committed first
                if attempt == 2:
                    raise Conflict("同一单据正在被并发提交，请稍后再试。") from err
            except DomainError as err:
                await self._audit_refusal(command, err)
                raise
        raise AssertionError("unreachable")

    async def _react(self, uow: UnitOfWork) -> None:
        """Run the reactions to every event the aggregates raised, round after round, until none is left."""
        while events := uow.pop_events():
            by_kind: dict[type[Event], list[Event]] = {}
            for event in events:
                by_kind.setdefault(type(event), []).append(event)
            for kind, same in by_kind.items():
                for batch_reaction in self.batch_events.get(kind, ()):
                    await batch_reaction(same, uow, self.deps)
                for reaction in self.events.get(kind, ()):
                    for event in same:
                        await reaction(event, uow, self.deps)

    async def _audit_refusal(self, command: Command, err: DomainError) -> None:
        COMMANDS_REFUSED.labels(type(command).__name__, err.code).inc()
        if isinstance(err, IllegalTransition):
            STATE_JUMP_ANOMALIES.inc()
        entity, entity_id = _entity_of(command)
        log.info("refused %s by %s via %s: %s", type(command).__name__, command.by, command.via, err.reason)
        try:
            async with self.uow_factory() as uow:
                await uow.audit(
                    actor=command.by, via=command.via, entity=entity, entity_id=entity_id,
                    action=getattr(command, "trigger", None) or getattr(command, "verb", None) or type(command).__name__,
                    at=self.deps.now,
                    outcome="refused", reason=err.reason, detail={"code": err.code},
                )
                on_refused = getattr(command, "on_refused", None)
                if on_refused is not None:  # e.g. a chat command answers the refusal in its conversation
                    await on_refused(uow, err, self.deps)
                await uow.commit()
        except Exception:  # the refusal itself must still reach the caller
            log.exception("could not audit a refusal")


def _entity_of(command: Command) -> tuple[str, str]:
    args = getattr(command, "args", ())
    if args:  # a chat command: its first argument names the order or after-sale it was about
        first = str(args[0])
        return ("aftersale" if first.startswith("AS") else "order"), first
    for attr, entity in (("order_no", "order"), ("aftersale_no", "aftersale"), ("external_id", "order")):
        value = getattr(command, attr, None)
        if value:
            return entity, str(value)
    if hasattr(command, "sku"):
        return "inventory", f"{getattr(command, 'store', '')}/{command.sku}"
    return "system", ""
