"""A signed DingTalk callback is accepted with one body only.

DingTalk signs the timestamp of a robot callback (`sign`) and of an interactive-card callback
(`x-ddpaas-signature`), never the body: whoever saw one request could send any other body with the same two
headers until the timestamp leaves the window. So the first body seen with a signature is remembered (its
SHA-256, in `dingtalk_signatures`, shared by every replica) and a different body with that signature is refused;
the same body again (a retry) passes and is then dropped by the inbox as a duplicate.

Assumption (not settled by DingTalk's documentation): DingTalk stamps each callback with the time it sends it, in
milliseconds, so two different callbacks rarely share a timestamp. If they do, the second is refused like a
forgery: there is no way to tell them apart without a signed body.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy import and_, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from integrations.db import tables as t
from integrations.db.engine import Database

log = logging.getLogger(__name__)

ROBOT, CARD = "robot", "card"  # the callback routes, each with its own signatures
PRUNE_ONE_IN = 64  # about one claim in this many also deletes signatures past the window
PRUNE_MARGIN = timedelta(minutes=1)

_signatures = t.dingtalk_signatures


class Use(Enum):
    FIRST = "first"  # a new signature: go on
    SAME_BODY = "same_body"  # a retry of a request seen before: go on (the inbox drops it)
    OTHER_BODY = "other_body"  # the signature of another request: refuse


async def claim_signature(db: Database, route: str, signature: str, body: bytes, *, at: datetime,
                          window_s: int) -> Use:
    """Remember `body` as the one body of `signature` on `route`, or say how it compares to the one remembered."""
    digest = hashlib.sha256(body).hexdigest()
    dialect = sqlite if db.engine.dialect.name == "sqlite" else postgresql
    insert = (
        dialect.insert(_signatures)
        .values(route=route, signature=signature, body_sha256=digest, seen_at=at)
        .on_conflict_do_nothing(index_elements=[_signatures.c.route, _signatures.c.signature])
        .returning(_signatures.c.signature)
    )
    async with db.engine.begin() as conn:
        if (await conn.execute(insert)).first() is not None:
            use = Use.FIRST
        else:
            first = await conn.scalar(select(_signatures.c.body_sha256).where(
                and_(_signatures.c.route == route, _signatures.c.signature == signature)))
            use = Use.SAME_BODY if first == digest else Use.OTHER_BODY
    if use is Use.FIRST and int(digest[:8], 16) % PRUNE_ONE_IN == 0:
        await _prune(db, at - timedelta(seconds=window_s) - PRUNE_MARGIN)
    return use


async def _prune(db: Database, before: datetime) -> None:
    """Signatures older than the window cannot come back (their timestamp is refused): forget them."""
    try:
        async with db.engine.begin() as conn:
            await conn.execute(delete(_signatures).where(_signatures.c.seen_at < before))
    except DBAPIError as err:  # another replica pruning at the same moment; the next prune catches up
        log.info("pruning dingtalk signatures skipped: %s", type(err).__name__)
