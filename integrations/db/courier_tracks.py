"""The latest courier report per waybill: one upsert that never lets an older report replace a newer one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.arbitration import CourierReport
from integrations.db import tables as t

_TRACKS = t.courier_tracks


def track_row(report: CourierReport, carrier: str, now: datetime) -> dict[str, Any]:
    """A courier_tracks row (its times stored as UTC by the column type)."""
    return {
        "waybill": report.waybill, "carrier": carrier, "status": report.status,
        "signed_at": report.signed_at, "last_at": report.last_at,
        "last_context": report.last_context, "updated_at": now,
    }


def report_of(row: Any) -> CourierReport:
    """A courier_tracks row (or a row with its columns) back as the report arbitration reads."""
    return CourierReport(row.waybill, row.status, signed_at=row.signed_at, last_at=row.last_at,
                         last_context=row.last_context or "")


async def upsert_tracks(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or replace, unless the stored report is newer (pushes may arrive out of order, and retried)."""
    if not rows:
        return
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    stmt = dialect.insert(_TRACKS)
    new = stmt.excluded
    newer = or_(_TRACKS.c.last_at.is_(None), and_(new.last_at.is_not(None), new.last_at >= _TRACKS.c.last_at))
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[_TRACKS.c.waybill],
            set_={name: new[name] for name in ("carrier", "status", "signed_at", "last_at", "last_context",
                                                "updated_at")},
            where=newer,
        ),
        list(rows),
    )
