"""Settings, read once at start-up: environment (ORDERBOT_, nested with __), then an optional TOML file."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/orderbot.db"


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 64 * 1024


class ApiSettings(BaseModel):
    token: str = "change-me"


class WecomSettings(BaseModel):
    corp_id: str = ""
    agent_id: int = 0
    secret: str = ""
    token: str = ""
    aes_key: str = ""
    api_base: str = "https://qyapi.weixin.qq.com"
    replay_window_s: int = 300
    robot_key: str = ""


class DingtalkSettings(BaseModel):
    app_key: str = ""
    app_secret: str = ""
    api_base: str = "https://api.dingtalk.com"


class RefundSettings(BaseModel):
    auto_approve_limit: float = 200.0
    dual_approval_limit: float = 2000.0


class JobsSettings(BaseModel):
    """Scheduled jobs: the lease that lets one replica run them, and how often each runs."""

    holder: str = ""  # this replica's lease holder id; empty = hostname:pid
    lease_ttl_s: int = 90
    logistics_sweep_minutes: int = 10
    stuck_orders_minutes: int = 5
    escalate_exceptions_minutes: int = 5


class LogisticsSettings(BaseModel):
    """Courier tracking (Kuaidi100-style query API)."""

    api_base: str = "https://poll.kuaidi100.com"
    customer: str = ""
    key: str = ""
    default_carrier: str = "shunfeng"
    concurrency: int = 200
    batch_size: int = 1000
    timeout_s: float = 5.0


def _default_sla() -> dict[str, int]:
    return {"split": 30, "picking": 60, "quality_check": 30, "packed": 120, "delivery_exception": 240}


class SlaSettings(BaseModel):
    """Minutes an order may stay in a state before the responsible person is told it is stuck."""

    minutes: dict[str, int] = Field(default_factory=_default_sla)


class EscalationSettings(BaseModel):
    ack_minutes: int = 30  # an exception nobody acknowledged for this long goes to the managers


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ORDERBOT_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    database_url: str = DEFAULT_DATABASE_URL
    http: HttpSettings = Field(default_factory=HttpSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    wecom: WecomSettings = Field(default_factory=WecomSettings)
    dingtalk: DingtalkSettings = Field(default_factory=DingtalkSettings)
    refund: RefundSettings = Field(default_factory=RefundSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    logistics: LogisticsSettings = Field(default_factory=LogisticsSettings)
    sla: SlaSettings = Field(default_factory=SlaSettings)
    escalation: EscalationSettings = Field(default_factory=EscalationSettings)

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
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_file)))
        return tuple(sources)


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
