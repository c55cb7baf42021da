"""Declarative lifecycles run by `transitions`: one Machine per table, built once, orders attached per call.

A Machine per order costs ~146 µs and add_model/remove_model ~65 µs; triggering an Event of one shared,
model-less machine costs ~10 µs. So each table builds one Machine and `fire` passes the aggregate in.

The table owns what each state means besides its edges: the aggregate methods run on entering it
(`on_enter`), the trigger the system fires itself on entering it (`automatic`), the step a person takes
next from it (`next`) or what it waits for (`waiting`); and of each trigger, the aggregate methods run
while it still sits in the state it leaves (`before`) and the past-tense reply (`done`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from transitions import Machine

from domain.errors import GuardRefused, IllegalTransition

Guard = Callable[[Any, Mapping[str, Any]], "str | None"]
"""A guard returns None to allow a transition, or the reason (in Chinese) it is refused."""

Condition = Callable[[Any], bool]
"""Whether a next step applies to this aggregate (an Order, or anything with the same attributes)."""


class Stateful(Protocol):
    state: str


@dataclass(frozen=True)
class NextStep:
    """What a person sends next from a state: typed in chat, or tapped when the card can carry it."""

    command: str  # the chat command's English name, which is also the card button's key: "pick"
    verb: str  # its Chinese name, what a person types: "拣货"
    button: str = ""  # the card button's label; "" when the step must be typed (it needs an argument)
    args: str = ""  # what follows the number: "[运单号]" optional, "<运单号>" required
    lead: str = ""  # words before the command: "换贴新面单后发送："
    when: Condition | None = None  # the step applies only when this holds; None: always

    def text(self, ref: str) -> str:
        """The line a person sends, e.g. "打包 OB00000012 [运单号]"."""
        return f"{self.lead}{self.verb} {ref}" + (f" {self.args}" if self.args else "")

    def key(self, ref: str) -> str:
        """The card button's key, e.g. "pick OB00000012"; "" when the step has no button."""
        return f"{self.command} {ref}" if self.button else ""


@dataclass(frozen=True)
class StateSpec:
    id: str
    label: str
    on_enter: tuple[str, ...] = ()  # aggregate methods the machine calls on entering, with the trigger's ctx
    next: tuple[NextStep, ...] = ()  # a person's next step: the first whose `when` holds
    waiting: str = ""  # what the aggregate waits for when no person's step is due: "等待快递揽收"
    automatic: str = ""  # a trigger the system fires itself as soon as the aggregate enters the state


@dataclass(frozen=True)
class TransitionSpec:
    trigger: str
    sources: tuple[str, ...]
    dest: str
    label: str
    guards: tuple[Guard, ...] = field(default=())
    before: tuple[str, ...] = ()  # aggregate methods called with the trigger's ctx before the state changes
    done: str = ""  # the past-tense reply once it ran: "已开始拣货"


class Lifecycle:
    def __init__(self, name: str, states: Sequence[StateSpec], table: Sequence[TransitionSpec]) -> None:
        self.name = name
        self.states = {s.id: s for s in states}
        self.table = tuple(table)
        self._rows = {(t.trigger, src): t for t in table for src in t.sources}
        self._triggers = {t.trigger: t.label for t in table}
        self._done = {t.trigger: t.done or f"已{t.label}" for t in table}
        self._check_columns()
        self._machine = Machine(
            model=None,
            states=[{"name": s.id, "on_enter": list(s.on_enter)} for s in states],
            transitions=[
                {"trigger": t.trigger, "source": list(t.sources), "dest": t.dest, "before": list(t.before)}
                for t in table
            ],
            initial=states[0].id,
            auto_transitions=False,
            ignore_invalid_triggers=False,
        )
        self._events = self._machine.events

    def label(self, state: str) -> str:
        return self.states[state].label

    def trigger_label(self, trigger: str) -> str:
        return self._triggers.get(trigger, trigger)

    def done_label(self, trigger: str) -> str:
        """The past-tense reply after `trigger` ran, e.g. pick → "已开始拣货"."""
        return self._done.get(trigger, trigger)

    def has_trigger(self, trigger: str) -> bool:
        return trigger in self._triggers

    def next_triggers(self, state: str) -> list[str]:
        """The triggers legal from `state`, in table order: what a person can do next."""
        return [t.trigger for t in self.table if state in t.sources]

    def next_step(self, model: Stateful) -> NextStep | None:
        """The one step a person should send next for `model`; None when it waits for someone else."""
        for step in self.states[model.state].next:
            if step.when is None or step.when(model):
                return step
        return None

    def waiting(self, state: str) -> str:
        """What an aggregate in `state` waits for; by default the triggers legal from it."""
        spec = self.states[state]
        return spec.waiting or "、".join(map(self.trigger_label, self.next_triggers(state)))

    def automatic(self, state: str) -> str | None:
        """The trigger the system fires itself on entering `state` (paid → allocate), if any."""
        return self.states[state].automatic or None

    def ensure_legal(self, model: Stateful, trigger: str) -> TransitionSpec:
        """Only the source-state check, for use cases that must plan before the guards can run."""
        row = self._rows.get((trigger, model.state))
        if row is None:
            raise IllegalTransition(self._illegal_reason(model.state, trigger))
        return row

    def check(self, model: Stateful, trigger: str, ctx: Mapping[str, Any]) -> TransitionSpec:
        row = self.ensure_legal(model, trigger)
        for guard in row.guards:
            reason = guard(model, ctx)
            if reason:
                raise GuardRefused(reason)
        return row

    def fire(self, model: Stateful, trigger: str, **ctx: Any) -> tuple[str, str]:
        """Run `trigger` on `model`; returns (from, to). Refusals raise and leave the model unchanged."""
        before = model.state
        row = self._rows.get((trigger, before))  # check(), inlined: two calls fewer on the hot path
        if row is None:
            raise IllegalTransition(self._illegal_reason(before, trigger))
        for guard in row.guards:
            reason = guard(model, ctx)
            if reason:
                raise GuardRefused(reason)
        self._events[trigger].trigger(model, **ctx)
        return before, model.state

    def _illegal_reason(self, state: str, trigger: str) -> str:
        action = self._triggers.get(trigger)
        if action is None:
            return f"没有“{trigger}”这个操作。"
        nexts = "、".join(self._triggers[t] for t in self.next_triggers(state)) or "无（流程已结束）"
        return f"当前状态为「{self.label(state)}」，不能{action}。可执行：{nexts}。"

    def _check_columns(self) -> None:
        """A state's automatic trigger and its next steps that are triggers must be legal from it."""
        for spec in self.states.values():
            wanted = [spec.automatic] if spec.automatic else []
            wanted += [s.command for s in spec.next if s.command in self._triggers]
            for trigger in wanted:
                if (trigger, spec.id) not in self._rows:
                    raise ValueError(f"{self.name}: {trigger!r} is not legal from {spec.id!r}")
