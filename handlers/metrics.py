"""Prometheus counters the handlers keep; exposed by bot/ at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

STATE_JUMP_ANOMALIES = Counter(
    "orderbot_state_jump_anomalies_total", "Triggers refused because they are not legal from the current state"
)
COMMANDS_REFUSED = Counter("orderbot_commands_refused_total", "Commands refused", ["command", "code"])
TRANSITIONS = Counter("orderbot_transitions_total", "Lifecycle transitions committed", ["entity", "trigger"])
OUTBOX_ROWS = Gauge(
    "orderbot_outbox_rows", "Outbox rows not delivered, by channel and status (pending, dead, unconfigured, skipped)",
    ["channel", "status"],
)
