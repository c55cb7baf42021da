"""Settings, read once at start-up: environment (ORDERBOT_, nested with __), then an optional TOML file."""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/orderbot.db"
SUBSCRIBER_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
DEFAULT_API_TOKEN = "change-me"  # `serve` refuses it on any address but loopback


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 64 * 1024
    body_timeout_s: float = 5.0  # a platform callback's body must arrive within this (else 408)


class ApiSettings(BaseModel):
    token: SecretStr = SecretStr(DEFAULT_API_TOKEN)


class WecomSettings(BaseModel):
    corp_id: str = ""
    agent_id: int = 0
    secret: SecretStr = SecretStr("")
    token: SecretStr = SecretStr("")
    aes_key: SecretStr = SecretStr("")  # the 43-character EncodingAESKey
    api_base: str = "https://qyapi.weixin.qq.com"
    replay_window_s: int = 300
    robot_key: SecretStr = SecretStr("")


class DashboardSettings(BaseModel):
    """The health dashboard's login: `概况` sends managers a link signed with `secret` (not the API token)."""

    secret: SecretStr = SecretStr("")  # empty: no link is sent and /dashboard accepts no login
    public_url: str = ""  # how people reach this service, e.g. https://orderbot.example.com (the link's base)
    link_minutes: int = Field(default=15, ge=1, le=1440)  # a link opens the dashboard this long after it is sent


class DingtalkSettings(BaseModel):
    app_key: str = ""
    app_secret: SecretStr = SecretStr("")
    api_base: str = "https://api.dingtalk.com"
    # Interactive cards (互动卡片, bot/dingtalk_cards.py): the published card template, the callbackRouteKey our
    # /dingtalk/card/callback URL is registered under, and the apiSecret given at that registration (it signs each
    # callback). All three set: cards with buttons go out as interactive cards; otherwise as actionCards.
    card_template_id: str = ""
    card_callback_route_key: str = ""
    card_callback_secret: SecretStr = SecretStr("")
    # Robot and card callbacks sign only their timestamp: one further off than this is refused (DingTalk itself
    # allows an hour), and each timestamp+sign pair is accepted with one body only (integrations/dingtalk/replay.py).
    replay_window_s: int = Field(default=300, ge=1, le=3600)
    # Hosts a callback's sessionWebhook may point at; a reply to any other URL goes through batchSend instead.
    # A loopback host listed here is also allowed over plain http with any port (the fake, in tests).
    session_webhook_hosts: list[str] = Field(default_factory=lambda: ["oapi.dingtalk.com", "api.dingtalk.com"])


class DouyinSettings(BaseModel):
    """The Douyin shop (抖店开放平台, a self-use app of the shop): push callback and open API. The channel is on
    when APP_KEY, APP_SECRET and SHOP_ID are all set."""

    app_key: str = ""
    app_secret: SecretStr = SecretStr("")
    shop_id: str = ""
    api_base: str = "https://openapi-fxg.jinritemai.com"
    timeout_s: float = 5.0
    store: str = ""  # the store Douyin orders go to; empty: the nearest store with stock
    catch_up_minutes: float = 10  # how often order.searchList is read from the stored cursor
    first_lookback_hours: float = 24  # how far back the first catch-up reads (no cursor yet)
    overlap_s: int = 300  # each catch-up re-reads this much before its cursor
    lag_s: int = 60  # and stops this far before now
    company_codes: dict[str, str] = Field(default_factory=dict)  # our courier code → Douyin's company_code, over the built-in table

    @property
    def enabled(self) -> bool:
        return bool(self.app_key and self.app_secret.get_secret_value() and self.shop_id)


class MiniprogramSettings(BaseModel):
    """The chain's own WeChat mini-program: its logins go through jscode2session, its customers then use our own
    signed session token. The channel is on when APP_ID, SECRET and SESSION_SECRET are all set."""

    app_id: str = ""
    secret: SecretStr = SecretStr("")
    api_base: str = "https://api.weixin.qq.com"
    timeout_s: float = 5.0
    session_secret: SecretStr = SecretStr("")  # signs our session tokens (HMAC-SHA256); changing it logs everyone out
    session_ttl: int = Field(default=7 * 86400, ge=60, le=90 * 86400)  # seconds a session token is good for
    logins_per_minute: int = Field(default=30, ge=0)  # per client IP and process; 0 = no limit
    orders_page_size: int = Field(default=20, ge=1, le=100)  # GET …/orders: the most a page lists
    store: str = ""  # the store mini-program orders go to; empty: the nearest store with stock
    mch_id: str = ""  # the WeChat Pay merchant id the app's payments go to: with APP_ID and SECRET, shipments are uploaded
    express_codes: dict[str, str] = Field(default_factory=dict)  # our courier code → WeChat's delivery_id, over the built-in table

    @property
    def enabled(self) -> bool:
        return bool(self.app_id and self.secret.get_secret_value() and self.session_secret.get_secret_value())

    @property
    def shipping_enabled(self) -> bool:
        return bool(self.app_id and self.secret.get_secret_value() and self.mch_id)


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


class LogisticsSettings(BaseModel):
    """Courier tracking (Kuaidi100-style query API)."""

    api_base: str = "https://poll.kuaidi100.com"
    customer: str = ""
    key: SecretStr = SecretStr("")
    default_carrier: str = "shunfeng"
    concurrency: int = 200
    batch_size: int = 1000
    timeout_s: float = 5.0
    # Kuaidi100 subscription push (订阅推送): our public callback URL (…/channels/kuaidi100/callback) and the
    # salt Kuaidi100 signs each push with. Both empty: no subscriptions are sent and every push is refused.
    callback_url: str = ""
    salt: SecretStr = SecretStr("")


class GeoSettings(BaseModel):
    """Address validation through Amap geocoding. No key: addresses are not validated (changes go straight through)."""

    api_base: str = "https://restapi.amap.com"
    key: SecretStr = SecretStr("")
    timeout_s: float = 2.0  # past this the address counts as unverified: changed, and customer service checks it


class SmsSettings(BaseModel):
    """Customer text messages through Aliyun SMS (SendSms). ACCESS_KEY_ID, ACCESS_KEY_SECRET and SIGN_NAME all
    set: texts are sent; otherwise each SMS row is set aside as "unconfigured" (counted on /metrics) and, once
    configured, the ones younger than `drain_max_age_hours` are sent at start-up (older ones are skipped).
    A template code per kind of text; a kind with no code is "unconfigured" the same way."""

    access_key_id: str = ""
    access_key_secret: SecretStr = SecretStr("")
    sign_name: str = ""  # the registered sign (签名), e.g. 某某汽配
    api_base: str = "https://dysmsapi.aliyuncs.com"
    timeout_s: float = Field(default=5.0, gt=0)
    shipped_template: str = ""  # SMS_… with ${order_no}, ${waybill}, ${courier}
    address_changed_template: str = ""  # SMS_… with ${order_no}, ${address}
    refund_template: str = ""  # SMS_… with ${order_no}, ${amount}
    quiet_start: str = Field(default="21:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # Beijing time: no texts from …
    quiet_end: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # … until (held, sent then)
    drain_max_age_hours: float = Field(default=24, ge=0)  # unconfigured rows younger than this are sent once configured

    @property
    def configured(self) -> bool:
        return bool(self.access_key_id and self.access_key_secret.get_secret_value() and self.sign_name)


class PrintingSettings(BaseModel):
    """Labels at the packing bench: `printers` maps a store code to its printer's URL — tspl://host:9100 or
    zpl://host:9100 (a raw job over TCP), cainiao://host:13528 (Cainiao's print component, WebSocket),
    pdf://dir (a PDF file per label); cainiao://host:13528?printer=NAME picks the component's printer by name.
    A store with no entry has its labels set aside as "unconfigured"."""

    printers: dict[str, str] = Field(default_factory=dict)
    connect_timeout_s: float = Field(default=3.0, gt=0)  # a printer that does not take the connection by then is off
    send_timeout_s: float = Field(default=10.0, gt=0)  # the whole job written (or the component's answer) by then
    notify_timeout_s: float = Field(default=15.0, ge=0)  # Cainiao: wait this long for notifyPrintResult
    retry_window_s: float = Field(default=600.0, gt=0)  # a label not printed by then is given up: a card to the bench
    drain_max_age_hours: float = Field(default=24, ge=0)  # unconfigured labels younger than this print once configured

    @field_validator("printers")
    @classmethod
    def _known_schemes(cls, value: dict[str, str]) -> dict[str, str]:
        def usable(url: str) -> bool:
            parts = urlsplit(url.strip())
            if parts.scheme == "pdf":
                return bool(parts.netloc + parts.path)
            try:
                parts.port  # noqa: B018 - raises ValueError for a port that is not a number
            except ValueError:
                return False
            return parts.scheme in ("tspl", "zpl", "cainiao") and bool(parts.hostname)

        bad = [f"{store}={url}" for store, url in value.items() if not usable(url)]
        if bad:
            raise ValueError("a printer URL is tspl://host:9100, zpl://host:9100, cainiao://host:13528 or "
                             f"pdf://folder ({', '.join(bad)})")
        return value
class WaybillSettings(BaseModel):
    """E-waybills at the packing bench: which provider issues each store's waybills. A store with none (no entry and
    no default, or the provider's settings incomplete) types its waybill at 发货, as without e-waybills."""

    providers: dict[str, Literal["cainiao", "kuaidi100"]] = Field(default_factory=dict)  # store code → provider
    default: Literal["", "cainiao", "kuaidi100"] = ""  # for the stores not named in `providers`
    timeout_s: float = Field(default=10.0, gt=0)


class CainiaoSettings(BaseModel):
    """Cainiao LINK (菜鸟电子面单云打印): TMS_WAYBILL_GET / TMS_WAYBILL_DISCARD."""

    api_base: str = "https://link.cainiao.com/gateway/link.do"
    provider_id: str = ""  # logistic_provider_id (the LINK app's resource code)
    secret: SecretStr = SecretStr("")  # signs data_digest
    cp_code: str = ""  # the courier the account is subscribed to, e.g. YTO, ZTO, STO
    to_code: str = ""  # only when Cainiao told the account to send one
    template_url: str = ""  # the standard template (templateURL) of the courier's 100 × 150 mm label

    @property
    def configured(self) -> bool:
        return bool(self.provider_id and self.secret.get_secret_value() and self.cp_code)


class Kuaidi100WaybillSettings(BaseModel):
    """Kuaidi100 e-waybills (label/order): the API key and secret, and the courier account (partnerId/partnerKey)."""

    api_base: str = "https://api.kuaidi100.com"
    key: str = ""
    secret: SecretStr = SecretStr("")
    partner_id: str = ""  # 电子面单客户账户或月结账号
    partner_key: SecretStr = SecretStr("")
    kuaidicom: str = "yuantong"  # Kuaidi100's courier code
    exp_type: str = "标准快递"
    pay_type: Literal["SHIPPER", "CONSIGNEE", "MONTHLY", "THIRDPARTY"] = "MONTHLY"

    @property
    def configured(self) -> bool:
        return bool(self.key and self.secret.get_secret_value() and self.partner_id)


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


class K3Settings(BaseModel):
    """K3 Cloud (金蝶云星空) WebAPI: sales orders (SAL_SaleOrder) pulled by modification time. Without a server URL,
    acct id and app id the channel is off (no pull job, no consistency counter)."""

    server_url: str = ""  # e.g. https://erp.example.com/k3cloud/ (the fake's base URL in tests and the demo)
    acct_id: str = ""  # 账套 ID (数据中心)
    username: str = ""  # the integration user
    app_id: str = ""  # signed mode: the WebAPI application's AppID (<clientid>_<code>); session mode: 第三方系统登录授权的应用 ID
    app_secret: SecretStr = SecretStr("")
    lcid: int = 2052
    org_num: int = 0  # the organisation number the SDK sends in X-Kd-Appdata (0: the user's default)
    auth: Literal["signed", "session"] = "signed"  # signed headers of the current SDK, or LoginByAppSecret + cookie
    pull_minutes: float = Field(default=10, gt=0)
    page_size: int = Field(default=2000, ge=10, le=10_000)  # rows per ExecuteBillQuery page (Limit)
    concurrency: int = Field(default=8, ge=1, le=64)  # bills of a page stored at once (each its own transaction)
    first_pull_days: float = Field(default=1, ge=0)  # with no cursor yet: bills modified within this many days
    timeout_s: float = Field(default=30, gt=0)
    order_filter: str = "FDocumentStatus = 'C' AND FCancelStatus = 'A'"  # audited, not voided
    # the books (应收单 AR_receivable on shipment, 红字应收单 on an approved refund): on with ORG_NUMBER set
    org_number: str = ""  # the selling organisation's number: FSETTLEORGID, FSALEORGID, FPAYORGID
    bill_type: str = "YSDLX01_SYS"  # FBillTypeID: 标准应收单
    currency: str = "PRE001"  # FCURRENCYID: 人民币
    tax_rate: float = Field(default=13.0, ge=0, le=100)  # FEntryTaxRate, %
    due_days: int = Field(default=0, ge=0, le=3650)  # FENDDATE_H = the business date + this
    submit: bool = True  # Submit each document after Save
    audit: bool = True  # and Audit it (implies submit)
    default_customer: str = ""  # FCUSTOMERID for customers with no K3 number ("": orderbot's customer id)
    refund_material: str = ""  # FMATERIALID of a part refund's one line ("": the order's first SKU)
    books_timeout_s: float = Field(default=15, gt=0)  # per call; a time-out is retried, and the retry asks K3 first

    @property
    def configured(self) -> bool:
        return bool(self.server_url and self.acct_id and self.app_id)

    @property
    def books_configured(self) -> bool:
        return self.configured and bool(self.org_number and self.app_secret.get_secret_value())


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


def waybill_provider_for(settings: Settings) -> Callable[[str], str]:
    """store → the provider that issues its e-waybills, "" when none is configured for it."""
    ready = {"cainiao": settings.cainiao.configured, "kuaidi100": settings.kuaidi100.configured}
    chosen, default = dict(settings.waybill.providers), settings.waybill.default

    def provider(store: str) -> str:
        name = chosen.get(store, default)
        return name if name and ready.get(name) else ""

    return provider


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ORDERBOT_",
        env_nested_delimiter="__",
        extra="ignore",
        hide_input_in_errors=True,  # a refused value may be a secret (a subscriber's): never printed back
    )

    database_url: str = DEFAULT_DATABASE_URL
    log_level: str = "INFO"  # httpx/httpcore stay at WARNING whatever this is (bot/logsafe.py)
    log_format: Literal["text", "json"] = "text"  # json: one JSON object a line (python-json-logger)
    # Per-logger levels, e.g. {"transitions": "INFO"}: `transitions` is at WARNING unless named here.
    log_levels: dict[str, str] = Field(default_factory=dict)
    http: HttpSettings = Field(default_factory=HttpSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    wecom: WecomSettings = Field(default_factory=WecomSettings)
    dingtalk: DingtalkSettings = Field(default_factory=DingtalkSettings)
    douyin: DouyinSettings = Field(default_factory=DouyinSettings)
    miniprogram: MiniprogramSettings = Field(default_factory=MiniprogramSettings)
    refund: RefundSettings = Field(default_factory=RefundSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    logistics: LogisticsSettings = Field(default_factory=LogisticsSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    sla: SlaSettings = Field(default_factory=SlaSettings)
    escalation: EscalationSettings = Field(default_factory=EscalationSettings)
    safety_stock: SafetyStockSettings = Field(default_factory=SafetyStockSettings)
    geo: GeoSettings = Field(default_factory=GeoSettings)
    inbox: InboxSettings = Field(default_factory=InboxSettings)
    events: EventsSettings = Field(default_factory=EventsSettings)
    k3: K3Settings = Field(default_factory=K3Settings)
    consistency: ConsistencySettings = Field(default_factory=ConsistencySettings)
    ask: AskSettings = Field(default_factory=AskSettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    printing: PrintingSettings = Field(default_factory=PrintingSettings)
    waybill: WaybillSettings = Field(default_factory=WaybillSettings)
    cainiao: CainiaoSettings = Field(default_factory=CainiaoSettings)
    kuaidi100: Kuaidi100WaybillSettings = Field(default_factory=Kuaidi100WaybillSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        return _level_name(value)

    @field_validator("log_levels")
    @classmethod
    def _known_levels(cls, value: dict[str, str]) -> dict[str, str]:
        return {name: _level_name(level) for name, level in value.items()}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = os.environ.get("ORDERBOT_CONFIG")
        if toml_file:
            if not Path(toml_file).is_file():
                raise FileNotFoundError(f"ORDERBOT_CONFIG names {toml_file}, which does not exist")
            sources.append(StrictTomlSource(settings_cls, toml_file=Path(toml_file)))
        return tuple(sources)


def _level_name(value: str) -> str:
    name = value.strip().upper()
    if name not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("a log level is one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    return name


class UnknownSettingError(ValueError):
    """Keys in the TOML file that no setting has: a typo (`secert`, `[htpp]`) would otherwise be ignored."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class StrictTomlSource(TomlConfigSettingsSource):
    """The TOML file, refused when it has a key no setting has (naming the key and the closest known one)."""

    def __init__(self, settings_cls: type[BaseSettings], toml_file: Path) -> None:
        super().__init__(settings_cls, toml_file=toml_file)
        problems = unknown_keys(settings_cls, self.toml_data)
        if problems:
            raise UnknownSettingError([f"{toml_file}: {problem}" for problem in problems])


def unknown_keys(model: type[BaseModel], data: dict[str, Any], where: str = "") -> list[str]:
    """One sentence per key of `data` that `model` has no field for, nested sections included."""
    problems: list[str] = []
    fields = model.model_fields
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in fields:
            near = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            hint = f"，是不是 {where + '.' if where else ''}{near[0]}？" if near else ""
            kind = "节" if isinstance(value, dict) else "键"
            problems.append(f"未知的{kind} {'[' + path + ']' if isinstance(value, dict) else path}{hint}")
            continue
        inner = _model_of(fields[key].annotation)
        if inner is not None and isinstance(value, dict):
            problems += unknown_keys(inner, value, path)
        elif isinstance(value, dict) and (each := _dict_values_model(fields[key].annotation)) is not None:
            for name, item in value.items():
                if isinstance(item, dict):
                    problems += unknown_keys(each, item, f"{path}.{name}")
    return problems


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        found = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        return found[0] if len(found) == 1 else None
    return None


def _dict_values_model(annotation: Any) -> type[BaseModel] | None:
    if typing.get_origin(annotation) is dict:
        args = typing.get_args(annotation)
        return _model_of(args[1]) if len(args) == 2 else None
    return None


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a name or 0.0.0.0/:: style wildcard is reachable from elsewhere


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
