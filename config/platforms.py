"""Settings sections of the platforms people and orders come through: the chat platforms (WeCom, DingTalk) and
the sales channels (the Douyin shop, the WeChat mini-program, K3 Cloud, which also keeps the books)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class WecomSettings(BaseModel):
    corp_id: str = ""
    agent_id: int = 0
    secret: SecretStr = SecretStr("")
    token: SecretStr = SecretStr("")
    aes_key: SecretStr = SecretStr("")  # the 43-character EncodingAESKey
    api_base: str = "https://qyapi.weixin.qq.com"
    replay_window_s: int = 300
    robot_key: SecretStr = SecretStr("")


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
