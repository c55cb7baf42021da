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
