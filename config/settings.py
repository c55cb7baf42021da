"""Settings, read once at start-up: environment (ORDERBOT_, nested with __), then an optional TOML file.

The root (`Settings`) is here with where the service listens; its sections are in config/platforms.py,
config/fulfilment.py and config/operations.py, the strict TOML reading in config/loading.py. Every name is
importable from here."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from config.fulfilment import (
    CainiaoSettings,
    GeoSettings,
    Kuaidi100WaybillSettings,
    LogisticsSettings,
    PrintingSettings,
    SmsSettings,
    WaybillSettings,
)
from config.loading import StrictTomlSource, UnknownSettingError, unknown_keys
from config.operations import (
    SUBSCRIBER_NAME,
    AskSettings,
    ConsistencySettings,
    DashboardSettings,
    DeliverySettings,
    EscalationSettings,
    EventsSettings,
    EventSubscriberSettings,
    InboxSettings,
    JobsSettings,
    RefundSettings,
    SafetyStockSettings,
    SlaSettings,
)
from config.platforms import DingtalkSettings, DouyinSettings, K3Settings, MiniprogramSettings, WecomSettings

__all__ = [
    "DEFAULT_API_TOKEN",
    "DEFAULT_DATABASE_URL",
    "SUBSCRIBER_NAME",
    "ApiSettings",
    "AskSettings",
    "CainiaoSettings",
    "ConsistencySettings",
    "DashboardSettings",
    "DeliverySettings",
    "DingtalkSettings",
    "DouyinSettings",
    "EscalationSettings",
    "EventSubscriberSettings",
    "EventsSettings",
    "GeoSettings",
    "HttpSettings",
    "InboxSettings",
    "JobsSettings",
    "K3Settings",
    "Kuaidi100WaybillSettings",
    "LogisticsSettings",
    "MiniprogramSettings",
    "PrintingSettings",
    "RefundSettings",
    "SafetyStockSettings",
    "Settings",
    "SlaSettings",
    "SmsSettings",
    "StrictTomlSource",
    "UnknownSettingError",
    "WaybillSettings",
    "WecomSettings",
    "is_loopback",
    "load_settings",
    "unknown_keys",
    "waybill_provider_for",
]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/orderbot.db"
DEFAULT_API_TOKEN = "change-me"  # `serve` refuses it on any address but loopback


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 64 * 1024
    body_timeout_s: float = 5.0  # a platform callback's body must arrive within this (else 408)


class ApiSettings(BaseModel):
    token: SecretStr = SecretStr(DEFAULT_API_TOKEN)


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
