"""The order channels' clients, built from settings for the jobs: a channel without settings is left out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx

from config.settings import K3Settings, Settings
from integrations.channels import OrderCounter
from integrations.channels.k3.auth import Identity
from integrations.channels.k3.client import K3Client, K3Config


@dataclass(frozen=True)
class ChannelClients:
    k3: K3Client | None = None
    counters: tuple[OrderCounter, ...] = field(default_factory=tuple)  # for the consistency score


def k3_config(cfg: K3Settings) -> K3Config:
    identity = Identity(cfg.acct_id, cfg.username, cfg.app_id, cfg.app_secret.get_secret_value(), cfg.lcid, cfg.org_num)
    return K3Config(cfg.server_url, identity, auth=cfg.auth, order_filter=cfg.order_filter)


@asynccontextmanager
async def channel_clients(settings: Settings) -> AsyncIterator[ChannelClients]:
    """One HTTP client per configured channel, closed with the jobs. (Douyin's client lives in the app or the job
    env, `Deps.douyin`; the consistency job adds its counter from there.)"""
    cfg = settings.k3
    if not cfg.configured:
        yield ChannelClients()
        return
    async with httpx.AsyncClient(timeout=httpx.Timeout(cfg.timeout_s)) as http:
        k3 = K3Client(http, k3_config(cfg))
        yield ChannelClients(k3=k3, counters=(k3,))
