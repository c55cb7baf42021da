"""What the use cases report for monitoring, as an observer the edge injects through Deps.

handlers/ knows no metrics library: bot/metrics.py implements `Observer` on prometheus_client and is set as
`deps.observer` when the app starts; without it (the CLI, unit tests) nothing is recorded.
"""

from __future__ import annotations

import re
from typing import Any, Protocol


class Observer(Protocol):
    def transitions(self, entity: str, trigger: str, count: int = 1) -> None:
        """Lifecycle transitions done (entity "order" or "aftersale", trigger "pick", "approve", ...)."""

    def refused(self, command: str, code: str) -> None:
        """A command refused by the domain (its `command_name`, the error's code)."""

    def state_jump_anomaly(self) -> None:
        """A trigger refused because it is not legal from the current state (状态跳变异常)."""

    def command_handled(self, command: str, seconds: float) -> None:
        """One inbound command handled through the bus (whatever its outcome), and how long it took."""


class NoObserver:
    """Records nothing: the default where no metrics are exposed."""

    def transitions(self, entity: str, trigger: str, count: int = 1) -> None:
        pass

    def refused(self, command: str, code: str) -> None:
        pass

    def state_jump_anomaly(self) -> None:
        pass

    def command_handled(self, command: str, seconds: float) -> None:
        pass


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def command_name(command: Any) -> str:
    """A bounded label for a command: a chat command's English name ("pick"), else its class in snake case."""
    spec = getattr(type(command), "spec", None)
    name = getattr(spec, "name", None)
    if isinstance(name, str):
        return name
    return _CAMEL.sub("_", type(command).__name__).lower()
