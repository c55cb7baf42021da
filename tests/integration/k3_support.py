"""What the K3 tests share: a fake K3, a client of either login pointed at it, a pull into orderbot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from domain.clock import CST
from domain.users import User
from handlers.bus import MessageBus
from integrations.channels.k3.auth import Identity
from integrations.channels.k3.client import Auth, K3Client, K3Config
from integrations.channels.k3.pull import K3Pull, PullReport
from integrations.db import tables as t
from integrations.db.channel_cursors import ChannelCursors
from integrations.db.engine import Database
from integrations.db.uow import UnitOfWork
from integrations.fakes.k3 import FakeK3
from tests.integration.helpers import rows, stock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=CST)  # K3 bills' times are China time


def client(fake: FakeK3, http: httpx.AsyncClient, auth: Auth = "signed", *, app_secret: str | None = None) -> K3Client:
    secret = fake.app_secret if app_secret is None else app_secret
    who = Identity(fake.acct_id, fake.username, fake.app_id, secret, fake.lcid, fake.org_num)
    return K3Client(http, K3Config(fake.server_url, who, auth=auth))


async def pull(k3: K3Client, db: Database, bus: MessageBus, page_size: int = 100) -> PullReport:
    return await K3Pull(k3, ChannelCursors(db), bus.handle, page_size=page_size,
                        first_since=T0 - timedelta(days=1), clock=lambda: datetime.now(UTC), concurrency=4).run()


async def k3_orders(db: Database) -> dict[str, list[dict[str, object]]]:
    """orderbot's K3 orders (top level), by bill number: their lines."""
    found = await rows(db, t.orders, t.orders.c.channel == "k3", t.orders.c.parent_no.is_(None))
    return {str(r["external_id"]): r["lines"] for r in found}


async def ready(db: Database, bus: MessageBus, *managers: str) -> None:
    await stock(bus, "SH01", "BP-001", 100_000)
    await stock(bus, "SH01", "OF-002", 100_000)
    async with UnitOfWork(db) as uow:
        for userid in managers:
            await uow.users.upsert(User(userid, f"经理{userid}", frozenset({"manager"})), datetime.now(UTC))
        await uow.commit()
