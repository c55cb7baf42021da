"""The record of DingTalk signatures, on SQLite and PostgreSQL: one body per signature, also when two replicas (two
engines on one database) see two bodies with the same signature at once; old signatures are forgotten."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from integrations.db import tables as t
from integrations.db.engine import Database
from integrations.dingtalk.replay import CARD, ROBOT, Use, _prune, claim_signature

AT = datetime(2026, 2, 6, 9, 0, tzinfo=UTC)
SIGN = "utkf/8FeU1rT5hmv4q1VX6kgzVlSzKl4K0umXnTih84="


async def claim(db: Database, body: bytes, route: str = ROBOT, signature: str = SIGN) -> Use:
    return await claim_signature(db, route, signature, body, at=AT, window_s=300)


async def test_one_body_per_signature(db: Database) -> None:
    assert await claim(db, b'{"msgId": "1"}') is Use.FIRST
    assert await claim(db, b'{"msgId": "1"}') is Use.SAME_BODY
    assert await claim(db, b'{"msgId": "2"}') is Use.OTHER_BODY
    assert await claim(db, b'{"msgId": "2"}', route=CARD) is Use.FIRST  # each route keeps its own
    assert await claim(db, b'{"msgId": "2"}', signature=SIGN[:-2] + "0=") is Use.FIRST


async def test_two_replicas_racing_with_two_bodies_accept_only_one(db_url: str) -> None:
    replicas = [Database(db_url), Database(db_url)]
    try:
        for n in range(5):
            signature = f"race-{n}"
            uses = await asyncio.gather(*(claim(r, f"body {i}".encode(), signature=signature)
                                          for i, r in enumerate(replicas * 2)))
            assert sorted(u.value for u in uses).count(Use.FIRST.value) == 1, uses
            assert Use.OTHER_BODY in uses
    finally:
        for replica in replicas:
            await replica.dispose()


async def test_signatures_past_the_window_are_forgotten(db: Database) -> None:
    await claim_signature(db, ROBOT, "old", b"a", at=AT - timedelta(minutes=10), window_s=300)
    await claim_signature(db, ROBOT, "new", b"b", at=AT, window_s=300)
    await _prune(db, AT - timedelta(minutes=6))
    async with db.engine.connect() as conn:
        left = await conn.scalar(select(func.count()).select_from(t.dingtalk_signatures))
        kept = await conn.scalar(select(t.dingtalk_signatures.c.signature))
    assert (left, kept) == (1, "new")


async def test_claims_prune_now_and_then(db: Database) -> None:
    """About one new signature in 64 also deletes what is past the window, so the table stays small."""
    await claim_signature(db, ROBOT, "ancient", b"a", at=AT - timedelta(days=1), window_s=300)
    for n in range(400):
        await claim_signature(db, ROBOT, f"s{n}", str(n).encode(), at=AT, window_s=300)
    async with db.engine.connect() as conn:
        ancient = await conn.scalar(select(func.count()).select_from(t.dingtalk_signatures).where(
            t.dingtalk_signatures.c.signature == "ancient"))
    assert ancient == 0
