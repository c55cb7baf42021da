"""Orders driven through the whole lifecycle with persistence, on SQLite and PostgreSQL.

Prints persisted transitions per second (each one a full unit of work: load, guard, update with the
version check, audit row, reactions, commit), the state-machine layer's cost per transition, and peak RSS.
On PostgreSQL the same run also measures a raw-asyncpg floor over the same orders and concurrency (UPDATE
with the version check + audit row + outbox row, 3 statements in one transaction) and prints the ratio of
the project's single-command figure to it.

    .venv/bin/python benchmarks/lifecycle.py                      # both databases
    .venv/bin/python benchmarks/lifecycle.py --db postgres --orders 2000 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import resource
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transitions import Machine  # noqa: E402

from benchmarks._support import _write_profile, database  # noqa: E402
from domain import commands as c  # noqa: E402
from domain.order import Order, OrderLine  # noqa: E402
from domain.order_lifecycle import ORDER_LIFECYCLE, STATES, TABLE  # noqa: E402
from handlers.bootstrap import build_bus  # noqa: E402
from handlers.bus import Deps  # noqa: E402
from integrations.db.engine import Database  # noqa: E402

WAREHOUSE_TO_DONE = ("pick", "check", "pack", "ship", "pick_up", "deliver", "complete")


def machine_layer_us(n: int = 20_000) -> dict[str, float]:
    """Per-transition cost of the shared machine, against a Machine per order and add_model per order."""
    now = datetime.now(UTC)

    def fresh() -> Order:
        return Order("OB1", "bench", "X", "C1", "addr", [OrderLine("S", 1, 100)], now, state="split",
                     store="SH01", waybill="SF1")

    orders = [fresh() for _ in range(n)]
    start = time.perf_counter()
    for order in orders:
        for trigger in WAREHOUSE_TO_DONE:
            ORDER_LIFECYCLE.fire(order, trigger, at=now)
    shared = (time.perf_counter() - start) / (n * len(WAREHOUSE_TO_DONE)) * 1e6

    orders = [fresh() for _ in range(n)]
    start = time.perf_counter()
    for order in orders:
        for trigger in WAREHOUSE_TO_DONE:
            order.fire(trigger, now)
    aggregate = (time.perf_counter() - start) / (n * len(WAREHOUSE_TO_DONE)) * 1e6

    states = [s.id for s in STATES]
    rows = [{"trigger": t.trigger, "source": list(t.sources), "dest": t.dest} for t in TABLE]
    m = max(1, n // 10)
    start = time.perf_counter()
    for _ in range(m):
        Machine(model=fresh(), states=states, transitions=rows, initial="split", auto_transitions=False)
    per_order_machine = (time.perf_counter() - start) / m * 1e6

    shared_machine = Machine(model=None, states=states, transitions=rows, initial="split", auto_transitions=False)
    start = time.perf_counter()
    for _ in range(m):
        model = fresh()
        shared_machine.add_model(model, initial="split")
        shared_machine.remove_model(model)
    add_remove = (time.perf_counter() - start) / m * 1e6
    return {"shared_fire_us": shared, "aggregate_fire_us": aggregate,
            "machine_per_order_us": per_order_machine, "add_remove_model_us": add_remove}


async def persisted(
    url: str, orders: int, concurrency: int, wave_size: int, skus: int = 1, profile_out: str = ""
) -> dict[str, float]:
    """Half the orders move one chat command at a time, the other half in scanned waves of `wave_size`.

    Orders are spread over `skus` parts of one store: with 1, every allocation and shipment takes the same stock
    row's lock (the worst case); a store's day spreads over its range of parts. `profile_out`: a cProfile of
    the one-command-at-a-time phase is written there (and its .prof)."""
    db = Database(url, pool_size=concurrency)
    bus = build_bus(db, Deps())
    parts = [f"BP-{k:03d}" for k in range(1, skus + 1)]
    for sku in parts:
        await bus.handle(c.SetStock("SH01", sku, orders * 2 + 10, by="bench", via="cli"))
    order_nos: list[str] = []
    start = time.perf_counter()
    for i in range(orders):
        order, _ = await bus.handle(c.CreateOrder(
            channel="bench", external_id=f"B{i}", customer_id=f"C{i % 50}", address="上海市浦东新区张杨路500号",
            lines=(c.LineInput(parts[i % skus], 1, 19_900),), paid=True, store="SH01", by="bench", via="api",
        ))
        order_nos.append(order.order_no)
    create_s = time.perf_counter() - start

    queue: asyncio.Queue[str] = asyncio.Queue()
    latencies: list[float] = []

    async def worker() -> None:
        while not queue.empty():
            no = queue.get_nowait()
            for trigger in WAREHOUSE_TO_DONE:
                t0 = time.perf_counter()
                await bus.handle(c.FireOrderTrigger(no, trigger, by="wh1", via="wecom",
                                                    waybill=f"SF{no}" if trigger == "pack" else None))
                latencies.append(time.perf_counter() - t0)

    async def hold_connection(ready: asyncio.Barrier) -> None:
        async with db.engine.connect():
            await ready.wait()

    ready = asyncio.Barrier(concurrency)  # the pool opens its connections before the clock, as the floor's does
    await asyncio.gather(*(hold_connection(ready) for _ in range(concurrency)))

    half = len(order_nos) // 2
    single, waved = order_nos[:half], order_nos[half:]
    for no in single:
        queue.put_nowait(no)
    profiler = cProfile.Profile() if profile_out else None
    cpu0, start = time.process_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if profiler is not None:
        profiler.disable()
        _write_profile(profiler, Path(profile_out))
    elapsed = time.perf_counter() - start
    cpu_us = (time.process_time() - cpu0) / len(latencies) * 1e6
    latencies.sort()
    floor = await raw_floor(url, single, concurrency) if not db.is_sqlite else {}

    async def wave(nos: list[str], trigger: str) -> None:
        waybills = tuple((no, f"SF{no}") for no in nos) if trigger == "pack" else ()
        outcome = await bus.handle(c.FireOrderTriggers(tuple(nos), trigger, by="wh1", via="scanner",
                                                       waybills=waybills))
        assert not outcome.refused, outcome.refused

    waves = [waved[i:i + wave_size] for i in range(0, len(waved), wave_size)]
    start = time.perf_counter()
    for trigger in WAREHOUSE_TO_DONE:
        await asyncio.gather(*(wave(w, trigger) for w in waves))
    wave_elapsed = time.perf_counter() - start
    await db.dispose()
    return {
        "transitions": len(latencies),
        "per_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1e3,
        "cpu_us": cpu_us,
        "create_per_s": orders / create_s,
        "wave_transitions": len(waved) * len(WAREHOUSE_TO_DONE),
        "wave_per_s": len(waved) * len(WAREHOUSE_TO_DONE) / wave_elapsed,
        **{f"floor_{k}": v for k, v in floor.items()},
    }


FLOOR_UPDATE = ("UPDATE orders SET state = $1, updated_at = $2, version = version + 1 "
                "WHERE order_no = $3 AND version = $4")
FLOOR_AUDIT = ("INSERT INTO audit_log (at, actor, via, entity, entity_id, action, from_state, to_state, outcome, "
               "reason, detail) VALUES ($1, 'wh1', 'wecom', 'order', $2, $3, $4, $5, 'ok', '', NULL)")
FLOOR_OUTBOX = ("INSERT INTO outbox (created_at, channel, kind, recipient, payload, status, attempts, "
                "next_attempt_at, last_error) VALUES ($1, 'wecom', 'text', 'wh1', $2::json, 'pending', 0, $1, '')")


async def raw_floor(url: str, order_nos: list[str], concurrency: int) -> dict[str, float]:
    """The same transitions over plain asyncpg: UPDATE with the version check, audit row, outbox row, one
    transaction each, `concurrency` workers on a pool of as many connections. What any code must pay at least."""
    import asyncpg

    pool = await asyncpg.create_pool(url.replace("postgresql+asyncpg://", "postgresql://"),
                                     min_size=concurrency, max_size=concurrency)
    assert pool is not None
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT order_no, state, version FROM orders WHERE order_no = any($1)", order_nos)
    current = {r["order_no"]: (r["state"], r["version"]) for r in rows}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for no in order_nos:
        queue.put_nowait(no)
    latencies: list[float] = []

    async def worker() -> None:
        while not queue.empty():
            no = queue.get_nowait()
            state, version = current[no]
            for trigger in WAREHOUSE_TO_DONE:
                t0 = time.perf_counter()
                now = datetime.now(UTC)
                async with pool.acquire() as conn, conn.transaction():
                    done = await conn.execute(FLOOR_UPDATE, trigger, now, no, version)
                    if done != "UPDATE 1":
                        raise RuntimeError(f"version check failed for {no}")
                    await conn.execute(FLOOR_AUDIT, now, no, trigger, state, trigger)
                    await conn.execute(FLOOR_OUTBOX, now, f'{{"text": "{no} {trigger}"}}')
                state, version = trigger, version + 1
                latencies.append(time.perf_counter() - t0)

    cpu0, start = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    cpu_us = (time.process_time() - cpu0) / len(latencies) * 1e6
    await pool.close()
    latencies.sort()
    return {"per_s": len(latencies) / elapsed, "p50_ms": statistics.median(latencies) * 1e3,
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1e3, "cpu_us": cpu_us}


def run_db(
    kind: str, orders: int, concurrency: int, wave_size: int, skus: int, profile_out: str = ""
) -> dict[str, float]:
    with database(kind) as url:
        return asyncio.run(persisted(url, orders, concurrency, wave_size, skus, profile_out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--wave", type=int, default=100, help="orders per scanned wave")
    parser.add_argument("--skus", type=int, default=1, help="parts the orders are spread over (1: one stock row, the worst case)")
    parser.add_argument("--profile", default="",
                        help="write a cProfile of the one-command phase here (and .prof; the last --db's)")
    args = parser.parse_args()

    layer = machine_layer_us()
    print(f"state-machine layer: {layer['shared_fire_us']:.1f} µs/transition through the shared machine "
          f"({layer['aggregate_fire_us']:.1f} µs with the aggregate's bookkeeping); "
          f"for comparison a Machine per order costs {layer['machine_per_order_us']:.0f} µs, "
          f"add_model+remove_model {layer['add_remove_model_us']:.0f} µs")
    for kind in (["sqlite", "postgres"] if args.db == "both" else [args.db]):
        concurrency = 1 if kind == "sqlite" else args.concurrency
        r = run_db(kind, args.orders, concurrency, args.wave, args.skus, args.profile)
        print(f"{kind}: one command per unit of work: {r['per_s']:,.0f} persisted transitions/s "
              f"({r['transitions']:,} transitions, {concurrency} workers, {args.skus} SKU(s); p50 {r['p50_ms']:.2f} ms, "
              f"p99 {r['p99_ms']:.2f} ms; {r['cpu_us']:,.0f} µs of this process's CPU per transition)")
        print(f"{kind}: scanned waves of {args.wave}: {r['wave_per_s']:,.0f} persisted transitions/s "
              f"({r['wave_transitions']:,} transitions); order intake {r['create_per_s']:,.0f} orders/s")
        if "floor_per_s" in r:
            ratio = r["per_s"] / r["floor_per_s"]
            print(f"{kind}: raw-asyncpg floor (UPDATE with version check + audit row + outbox row, one transaction, "
                  f"{concurrency} workers): {r['floor_per_s']:,.0f} transitions/s (p50 {r['floor_p50_ms']:.2f} ms, "
                  f"p99 {r['floor_p99_ms']:.2f} ms; {r['floor_cpu_us']:,.0f} µs CPU per transition)")
            print(f"{kind}: one command per unit of work / floor: {ratio:.2f} (target ≥ 0.6: "
                  f"{'met' if ratio >= 0.6 else 'MISSED'}); p99 {r['p99_ms']:.1f} ms (target < 50 ms: "
                  f"{'met' if r['p99_ms'] < 50 else 'MISSED'})")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mb:.0f} MiB")


if __name__ == "__main__":
    main()
