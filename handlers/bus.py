"""The message bus: a command has one handler, an event any number; all run in one unit of work."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

from domain import log_context
from domain.aftersale import ApprovalPolicy
from domain.clock import utcnow
from domain.commands import Command
from domain.errors import Conflict, DomainError, IllegalTransition
from domain.events import Audited, Change, Event
from handlers.metrics import NoObserver, Observer, command_name
from handlers.publish import wire_events
from integrations.channels.douyin import DouyinFeed
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
    douyin: DouyinFeed | None = None  # the Douyin shop's orders and catch-up cursor; None: channel not configured
    # a job's steps, each in its own unit of work (build_bus sets it to the bus's `handle`)
    dispatch: Callable[[Command], Awaitable[Any]] | None = None
    observer: Observer = field(default_factory=NoObserver)  # metrics, set by bot/ (bot/metrics.py)
    # (userid, now) → a signed link to the health dashboard, for `概况`; None: the dashboard is not set up
    dashboard_link: Callable[[str, datetime], str] | None = None
    # store code → its e-waybill provider ("cainiao" | "kuaidi100"), "" when 打包 leaves the waybill to be typed
    waybill_provider: Callable[[str], str] = field(default=lambda store: "")

    @property
    def now(self) -> datetime:
        return self.clock()


CommandHandler = Callable[..., Awaitable[Any]]  # (command, uow, deps[, facts])
EventHandler = Callable[[Any, UnitOfWork, Deps], Awaitable[None]]
BatchEventHandler = Callable[[list[Any], UnitOfWork, Deps], Awaitable[None]]
Before = Callable[[Any, Deps], Awaitable[Any]]
RefusalHandler = Callable[[Any, UnitOfWork, DomainError, Deps], Awaitable[Any]]
R = TypeVar("R")
H = TypeVar("H", bound=Callable[..., Awaitable[Any]])


class Router:
    """Handlers registered by decorator; routers are composed explicitly into the bus."""

    def __init__(self) -> None:
        self.commands: dict[type[Command], CommandHandler] = {}
        self.before: dict[type[Command], Before] = {}
        self.refusals: dict[type[Command], RefusalHandler] = {}
        self.events: dict[type[Event], list[EventHandler]] = {}
        self.batch_events: dict[type[Event], list[BatchEventHandler]] = {}

    def command(self, kind: type[Command], *, before: Before | None = None) -> Callable[[H], H]:
        """`before` runs outside the transaction (a network look-up, e.g. a geocoder); the handler gets its
        result as `facts`."""

        def register(handler: H) -> H:
            if kind in self.commands:
                raise ValueError(f"{kind.__name__} already has a handler")
            self.commands[kind] = handler
            if before is not None:
                self.before[kind] = before
            return handler

        return register

    def refusal(self, kind: type[Command]) -> Callable[[RefusalHandler], RefusalHandler]:
        """What else a refusal of `kind` (or a subclass) does besides its audit row: a chat command answers
        the reason in its conversation; its return value is what `handle` returns instead of raising."""

        def register(handler: RefusalHandler) -> RefusalHandler:
            self.refusals[kind] = handler
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
    def __init__(
        self, uow_factory: Callable[[], UnitOfWork], deps: Deps, *routers: Router,
        duplicate_errors: tuple[type[Exception], ...] = (),
    ) -> None:
        self.uow_factory = uow_factory
        self.deps = deps
        self.duplicate_errors = duplicate_errors  # the storage's unique-key violation: a concurrent twin
        self.commands: dict[type[Command], CommandHandler] = {}
        self.before: dict[type[Command], Before] = {}
        self.refusals: dict[type[Command], RefusalHandler] = {}
        self.events: dict[type[Event], list[EventHandler]] = {}
        self.batch_events: dict[type[Event], list[BatchEventHandler]] = {}
        for router in routers:
            for kind, handler in router.commands.items():
                if kind in self.commands:
                    raise ValueError(f"{kind.__name__} has two handlers")
                self.commands[kind] = handler
            self.before.update(router.before)
            self.refusals.update(router.refusals)
            for event_kind, handlers in router.events.items():
                self.events.setdefault(event_kind, []).extend(handlers)
            for event_kind, batch_handlers in router.batch_events.items():
                self.batch_events.setdefault(event_kind, []).extend(batch_handlers)

    async def handle(self, command: Command[R]) -> R:
        """Run the command and the reactions to its events in one transaction, then commit."""
        with log_context.about(order_no=getattr(command, "order_no", None)):  # the order on each log line
            return await self._handle(command)

    async def _handle(self, command: Command[R]) -> R:
        handler = self.commands[type(command)]
        extra: dict[str, Any] = {}
        before = self.before.get(type(command))
        if before is not None:  # look-ups over the network happen before any transaction opens
            extra["facts"] = await before(command, self.deps)
        for attempt in (1, 2):
            try:
                async with self.uow_factory() as uow:
                    uow.acting(command.by, command.via)
                    result = await handler(command, uow, self.deps, **extra)
                    await self._react(uow)
                    await uow.commit()
                    return cast(R, result)
            except self.duplicate_errors as err:
                # a concurrent twin (same channel + external id, same message id) committed first
                if attempt == 2:
                    raise Conflict("同一单据正在被并发提交，请稍后再试。") from err
            except DomainError as err:
                answered = await self._refused(command, err)
                if answered is None:
                    raise
                return cast(R, answered)
        raise AssertionError("unreachable")

    async def _react(self, uow: UnitOfWork) -> None:
        """Run the reactions to every event the aggregates raised, round after round, until none is left."""
        while events := uow.pop_events():
            changes = [e.change() for e in events if isinstance(e, Audited)]
            # the audit trail and the order event bus (published after commit), in one round trip
            await uow.log([c for c in changes if c is not None], wire_events(events), self.deps.now)
            by_kind: dict[type[Event], list[Event]] = {}
            for event in events:
                by_kind.setdefault(type(event), []).append(event)
            for kind, same in by_kind.items():
                for batch_reaction in self.batch_events.get(kind, ()):
                    await batch_reaction(same, uow, self.deps)
                for reaction in self.events.get(kind, ()):
                    for event in same:
                        await reaction(event, uow, self.deps)

    async def _refused(self, command: Command[Any], err: DomainError) -> Any:
        """Audit the refusal (who, what, why) and let the command's family answer it; None: nobody did."""
        self.deps.observer.refused(command_name(command), err.code)
        if isinstance(err, IllegalTransition):
            self.deps.observer.state_jump_anomaly()
        entity, entity_id = command.subject()
        log.info("refused %s by %s via %s: %s", type(command).__name__, command.by, command.via, err.reason)
        on_refused = next((h for kind, h in self.refusals.items() if isinstance(command, kind)), None)
        try:
            async with self.uow_factory() as uow:
                uow.acting(command.by, command.via)
                refusal = Change(entity, entity_id, command.action(), outcome="refused", reason=err.reason,
                                 detail={"code": err.code})
                await uow.record([refusal], self.deps.now)
                answered = None if on_refused is None else await on_refused(command, uow, err, self.deps)
                await uow.commit()
                return answered
        except Exception:  # the refusal itself must still reach the caller
            log.exception("could not audit a refusal")
            return None
