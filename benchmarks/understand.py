"""Plain questions: how long understanding takes per question, and a whole answer through the bus.

1. Understanding: every question of the test table (tests/integration/test_questions.py, 222 questions) read by
   the understander against the seeded chain's names, `--rounds` times; per-question time, p50 / p99 / max.
   Target: p99 < 5 ms.
2. End to end: each question as a text message stored in the inbox, parsed, understood and answered through
   the bus in its unit of work (the answer committed to the outbox), on SQLite and on PostgreSQL; p50 / p99.

    .venv/bin/python benchmarks/understand.py                 # SQLite and PostgreSQL
    .venv/bin/python benchmarks/understand.py --db sqlite --rounds 20
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._support import database, pct  # noqa: E402
from handlers.bootstrap import build_bus  # noqa: E402
from handlers.bus import Deps  # noqa: E402
from integrations.db.engine import Database  # noqa: E402
from tests.integration.questions_seed import Asker, Clock, seed  # noqa: E402
from tests.integration.test_questions import ROWS  # noqa: E402


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, 0.5) * 1000:.2f} ms · p99 {pct(values, 0.99) * 1000:.2f} ms · max {max(values) * 1000:.2f} ms"


async def run(url: str, kind: str, rounds: int, understanding: bool) -> None:
    db = Database(url)
    clock = Clock()
    bus = build_bus(db, Deps(clock=clock))
    await seed(db, bus, clock)
    ask = Asker(db, bus)
    understander = await ask.asking.understander()
    assert understander is not None
    if understanding:
        times = []
        for _ in range(rounds):
            for _, question, _ in ROWS:
                started = time.perf_counter()
                understander(question)
                times.append(time.perf_counter() - started)
        print(f"understanding, {len(ROWS)} questions × {rounds}: {ms(times)}")
    answers = []
    for user, question, _ in ROWS:
        started = time.perf_counter()
        await ask(user, question)
        answers.append(time.perf_counter() - started)
    print(f"answer through the bus on {kind}, {len(ROWS)} questions: {ms(answers)}")
    await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    for n, kind in enumerate(kinds):
        with database(kind) as url:
            asyncio.run(run(url, kind, args.rounds, understanding=n == 0))


if __name__ == "__main__":
    main()
