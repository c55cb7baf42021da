"""Settings sections for orderbot's own work: the dashboard, the business rules (refunds, SLAs, escalation,
safety stock, consistency), scheduled jobs, the outbox and inbox, the order event bus and plain questions."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, SecretStr, field_validator

SUBSCRIBER_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")


class DashboardSettings(BaseModel):
    """The health dashboard's login: `概况` sends managers a link signed with `secret` (not the API token)."""

    secret: SecretStr = SecretStr("")  # empty: no link is sent and /dashboard accepts no login
    public_url: str = ""  # how people reach this service, e.g. https://orderbot.example.com (the link's base)
    link_minutes: int = Field(default=15, ge=1, le=1440)  # a link opens the dashboard this long after it is sent


class RefundSettings(BaseModel):
    auto_approve_limit: float = 200.0
    dual_approval_limit: float = 2000.0


class JobsSettings(BaseModel):
    """Scheduled jobs: which replica runs them (the jobs lock, integrations/db/lease.py), and how often each runs."""

    holder: str = ""  # this replica's name in the log and in pg_stat_activity; empty = hostname:pid
    leader_retry_s: float = 5.0  # how often a follower tries for the jobs lock (and the holder checks it)
    logistics_sweep_minutes: float = 10
    stuck_orders_minutes: float = 5
    escalate_exceptions_minutes: float = 5
    safety_stock_minutes: float = 60
    consistency_minutes: float = 60


class DeliverySettings(BaseModel):
    """The outbox: a failed send is retried for a window of time (capped exponential back-off with jitter), and a
    breaker per channel pauses a channel that failed `breaker_threshold` times in a row (cool-down doubling from
    `breaker_cool_s` to `breaker_max_cool_s`, then one probe), so an outage costs no row its window."""

    retry_window_s: float = 6 * 3600
    base_backoff_s: float = 1.0
    max_backoff_s: float = 300.0
    breaker_threshold: int = 10
    breaker_cool_s: float = 5.0
    breaker_max_cool_s: float = 60.0
    batch: int = 50  # rows claimed and in hand at most
    max_in_flight: int = 16  # sends under way at once (one per recipient at a time)
    dead_report_gather_s: float = 5.0  # rows dying within this of each other are one warning to the managers
    urgent_reserve: int = Field(default=5, ge=0, le=29)  # WeCom slots per person and window only urgent pushes use


class SafetyStockSettings(BaseModel):
    """Dynamic safety stock (动态安全库存): the hourly forecast of A-class SKUs; formula in domain/safety_stock.py."""

    short_video_channels: list[str] = Field(default_factory=lambda: ["douyin", "kuaishou"])
    a_top_n: int = 20  # A = top N SKUs by 7-day units on the short-video channels
    b_share: float = 0.3  # B = the next 30 % of the rest by 7-day units; C = everything else
    recent_weight: float = 0.7  # share of the last 24 h in the daily rate (the 7-day mean has the rest)
    w_hist: float = 1.0
    w_cart: float = 1.0
    w_live: float = 1.0
    cart_conversion: float = 0.3  # orders per cart add of the last 24 h
    viewer_conversion: float = 0.002  # orders per live viewer per hour
    live_hours: float = 4.0  # live-broadcast hours expected within the 48 h
    live_fresh_minutes: int = 120  # a live_viewers reading older than this no longer counts
    over_ratio: float = 1.5  # over = forecast > ratio × replenish_threshold
    consecutive: int = 2  # evaluations in a row over before a suggestion
    min_gap_minutes: int = 45  # an evaluation closer than this to the one before is the same hour's, not the next
    max_gap_minutes: int = 90  # evaluations further apart than this are not "in a row"
    slow_mover_days: float = 142.0  # turnover days above this flag a slow mover (weekly, to supervisors)
    core_channels: list[str] = Field(default_factory=lambda: ["douyin", "miniprogram"])
    non_core_channels: list[str] = Field(default_factory=lambda: ["k3", "kuaishou", "wholesale"])


def _default_sla() -> dict[str, int]:
    return {"split": 30, "picking": 60, "quality_check": 30, "packed": 120, "delivery_exception": 240}


class SlaSettings(BaseModel):
    """Minutes an order may stay in a state before the responsible person is told it is stuck."""

    minutes: dict[str, int] = Field(default_factory=_default_sla)


class EscalationSettings(BaseModel):
    ack_minutes: int = 30  # an exception nobody acknowledged for this long goes to the managers


class InboxSettings(BaseModel):
    max_attempts: int = Field(default=5, ge=1)  # a message that fails this often is parked as dead and reported
    retry_delay_s: float = Field(default=5.0, ge=0)  # the first retry after a failure; doubles each time
    sweep_interval_s: float = Field(default=2.0, gt=0, le=60)  # how often unprocessed rows no process has are re-queued
    lease_s: float = Field(default=15.0, gt=0, le=600)  # a row under way in a process that stops renewing it is free after this
    sweep_batch: int = Field(default=200, ge=1)  # rows one sweep claims at most; the next sweep takes more


class EventSubscriberSettings(BaseModel):
    """One webhook subscriber of the order event bus: where to POST, the HMAC key, which event types."""

    url: str
    secret: SecretStr  # never in a log line or a repr
    events: list[str] = Field(default_factory=lambda: ["*"])  # glob patterns of wire names, e.g. "order.*"

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("a subscriber's url must start with http:// or https://")
        return value

    @field_validator("secret")
    @classmethod
    def _has_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("a subscriber's secret must have at least 16 characters (it signs every delivery)")
        return value


class EventsSettings(BaseModel):
    """The order event bus: signed webhooks (a JSON map name → {url, secret[, events]}) and NATS JetStream."""

    subscribers: dict[str, EventSubscriberSettings] = Field(default_factory=dict)
    nats_url: str = ""  # e.g. nats://127.0.0.1:4222; empty: no JetStream
    nats_stream: str = "ORDERBOT_ORDERS"  # made on first use, subjects <prefix>.>
    nats_subject_prefix: str = "orderbot.orders"  # an event goes to <prefix>.<event>, e.g. orderbot.orders.order.created
    timeout_s: float = 5.0  # one delivery (a POST, a JetStream ack)
    batch: int = 100  # events read per step
    retry_base_s: float = 1.0  # back-off after the first failure, doubling per failure in a row ...
    retry_max_s: float = 60.0  # ... up to this; a subscriber is retried for as long as it is down
    lease_s: float = 30.0  # a replica delivering to a subscriber holds its cursor this long per renewal
    idle_s: float = 0.5  # how often a caught-up subscriber looks for new events

    @field_validator("subscribers")
    @classmethod
    def _names(cls, value: dict[str, EventSubscriberSettings]) -> dict[str, EventSubscriberSettings]:
        for name in value:
            if not SUBSCRIBER_NAME.fullmatch(name) or name == "jetstream":
                raise ValueError(f"subscriber name {name!r}: letters, digits, - and _ only (1-40), not 'jetstream'")
        return value


class ConsistencySettings(BaseModel):
    """Cross-system consistency (跨系统一致性得分): min ÷ max × 100 of the order counts per channel and orderbot."""

    threshold: float = Field(default=98.5, gt=0, le=100)  # below this, a yellow warning to the managers
    lag_minutes: float = Field(default=15, ge=0)  # an hour is scored this long after it ends (pulls catch up)
    shown_ids: int = Field(default=10, ge=1, le=50)  # missing orders named in the warning


class AskSettings(BaseModel):
    """Plain questions in chat (bot/understanding.py): the names people use for stores, and how often the names
    the understander knows (stores, SKUs, staff, customers) are reloaded from the database."""

    store_names: dict[str, str] = Field(default_factory=dict)  # store code -> name, e.g. {"SH01": "上海浦东店"}
    refresh_s: float = Field(default=60.0, ge=0)  # 0: reload before every question (tests)
    cache_dir: str = "var"  # where jieba keeps its dictionary cache (jieba.cache)
