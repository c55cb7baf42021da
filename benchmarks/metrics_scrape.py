"""What a /metrics scrape costs the database once the tables have grown: the backlog query timed on a year of rows.

A fresh migrated database gets N delivered outbox rows (a year of replies and pushes at the case's volume is a few
million), a backlog of pending and dead rows, handled and unhandled inbound messages, and incidents; then the one
grouped query behind the database gauges (bot/metrics_backlog.py) runs R times, and one whole scrape (query +
exposition) through StoreGauges. Reported: the median and worst query time, and the rows it counted.

    .venv/bin/python benchmarks/metrics_scrape.py                          # PostgreSQL, 2,000,000 delivered rows
    .venv/bin/python benchmarks/metrics_scrape.py --delivered 200000 --db sqlite
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from sqlalchemy import text  # noqa: E402

from benchmarks._support import command_line, run_on_database  # noqa: E402
from bot.metrics_backlog import StoreGauges, backlog_query  # noqa: E402
from integrations.db.engine import Database  # noqa: E402

PG_FILL = """
INSERT INTO outbox (created_at, channel, kind, recipient, payload, status, attempts, next_attempt_at, last_error,
                    delivered_at)
SELECT now() - make_interval(secs => i * 10), CASE i % 3 WHEN 0 THEN 'wecom_chat' WHEN 1 THEN 'chat'
       ELSE 'wecom_group' END, 'text', 'user' || (i % 62), '{}'::json,
       CASE WHEN i <= :pending THEN 'pending' WHEN i <= :pending + :dead THEN 'dead' ELSE 'delivered' END,
       0, now(), '', now()
FROM generate_series(1, :rows) AS i;
INSERT INTO inbound_messages (platform, message_id, received_at, processed_at, attempts, last_error)
SELECT 'wecom', 'm' || i, now() - make_interval(secs => i), CASE WHEN i > :pending THEN now() END, 0, ''
FROM generate_series(1, :inbound) AS i;
INSERT INTO exceptions (kind, severity, message, opened_at, resolution, resolved_at)
SELECT CASE i % 4 WHEN 0 THEN 'stuck_order' WHEN 1 THEN 'address_change' WHEN 2 THEN 'out_of_stock'
       ELSE 'logistics_conflict' END, 'warning', 'x', now() - make_interval(secs => i * 60), '',
       CASE WHEN i > 50 THEN now() END
FROM generate_series(1, :incidents) AS i;
ANALYZE;
"""

SQLITE_FILL = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows)
INSERT INTO outbox (created_at, channel, kind, recipient, payload, status, attempts, next_attempt_at, last_error,
                    delivered_at)
SELECT datetime('now', '-' || (i * 10) || ' seconds'), CASE i % 3 WHEN 0 THEN 'wecom_chat' WHEN 1 THEN 'chat'
       ELSE 'wecom_group' END, 'text', 'user' || (i % 62), '{}',
       CASE WHEN i <= :pending THEN 'pending' WHEN i <= :pending + :dead THEN 'dead' ELSE 'delivered' END,
       0, datetime('now'), '', datetime('now')
FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :inbound)
INSERT INTO inbound_messages (platform, message_id, received_at, processed_at, attempts, last_error)
SELECT 'wecom', 'm' || i, datetime('now', '-' || i || ' seconds'), CASE WHEN i > :pending THEN datetime('now') END,
       0, '' FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :incidents)
INSERT INTO exceptions (kind, severity, message, opened_at, resolution, resolved_at)
SELECT CASE i % 4 WHEN 0 THEN 'stuck_order' WHEN 1 THEN 'address_change' WHEN 2 THEN 'out_of_stock'
       ELSE 'logistics_conflict' END, 'warning', 'x', datetime('now', '-' || (i * 60) || ' seconds'), '',
       CASE WHEN i > 50 THEN datetime('now') END
FROM n;
ANALYZE;
"""


async def run(url: str, args: argparse.Namespace) -> None:
    db = Database(url)
    params = {"rows": args.delivered + args.pending + args.dead, "pending": args.pending, "dead": args.dead,
              "inbound": args.inbound, "incidents": args.incidents}
    started = time.perf_counter()
    async with db.engine.begin() as conn:
        for statement in (SQLITE_FILL if db.is_sqlite else PG_FILL).split(";"):
            if statement.strip():
                await conn.execute(text(statement), {k: v for k, v in params.items() if f":{k}" in statement})
    print(f"filled {params['rows']:,} outbox rows ({args.pending:,} pending, {args.dead:,} dead), "
          f"{args.inbound:,} inbound, {args.incidents:,} incidents in {time.perf_counter() - started:.1f} s")
    took: list[float] = []
    async with db.engine.connect() as conn:
        for _ in range(args.repeat):
            started = time.perf_counter()
            rows = (await conn.execute(backlog_query())).all()
            took.append(time.perf_counter() - started)
    counted = sum(r[3] for r in rows)
    print(f"backlog query: median {statistics.median(took) * 1000:.1f} ms, worst {max(took) * 1000:.1f} ms "
          f"over {args.repeat} runs; {len(rows)} groups, {counted:,} rows counted")
    store, registry = StoreGauges(cache_s=0), CollectorRegistry()
    registry.register(store)
    started = time.perf_counter()
    await store.refresh(db)
    body = generate_latest(registry)
    print(f"one scrape of the database gauges: {(time.perf_counter() - started) * 1000:.1f} ms, {len(body):,} bytes")
    await db.dispose()


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--delivered", type=int, default=2_000_000)
    parser.add_argument("--pending", type=int, default=2_000)
    parser.add_argument("--dead", type=int, default=300)
    parser.add_argument("--inbound", type=int, default=200_000)
    parser.add_argument("--incidents", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=20)
    run_on_database(parser.parse_args(), run)


if __name__ == "__main__":
    main()
