"""What the peak-day replay measured, and the outcome figures of the case read back from the database at the end:
orders shipped to a stale address, held customers settled, wrong or missed shipments; the dashboard's figures;
where the server's time went (/metrics)."""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from benchmarks._support import ServerProcess, pct
from benchmarks.peak_support import BacklogSampler, Samples, delta, peak_rss_mib, scrape, summed
from bot.dashboard_auth import DashboardSigner, link
from domain.clock import utcnow
from domain.order_lifecycle import SHIPPED_OR_LATER
from integrations.db import tables as t
from integrations.db.engine import Database

if TYPE_CHECKING:
    from benchmarks.peak_day import Day
    from benchmarks.peak_plan import Planned


@dataclass
class Exceptional:
    kind: str
    order_no: str
    sent: float
    recipients: list[str]
    word: str


@dataclass
class Tally:
    arrivals: list[float] = field(default_factory=list)  # channel request sent → order visible, allocated
    chat_steps: list[float] = field(default_factory=list)
    exceptions: list[Exceptional] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    shipped_by_us: dict[str, Planned] = field(default_factory=dict)
    held_back: set[str] = field(default_factory=set)
    out_of_stock: set[str] = field(default_factory=set)
    seen_out_of_stock: dict[str, float] = field(default_factory=dict)  # order_no -> when seen created, still paid
    settlements: dict[int, int] = field(default_factory=dict)
    refunds: int = 0
    cards_not_seen: int = 0
    not_started: int = 0
    cut: int = 0
    finished_at: float = 0.0

    def exception(self, kind: str, order_no: str, sent: float, recipients: list[str], word: str) -> None:
        self.exceptions.append(Exceptional(kind, order_no, sent, recipients, word))


def _ms(values: list[float], q: float) -> str:
    return f"{pct(values, q) * 1000:.0f} ms" if values else "—"


async def outcomes(db: Database, day: Day, planned: list[Planned]) -> dict[str, Any]:
    async with db.engine.connect() as conn:
        orders = {r.order_no: r for r in (await conn.execute(select(
            t.orders.c.order_no, t.orders.c.external_id, t.orders.c.state, t.orders.c.waybill, t.orders.c.address,
            t.orders.c.store, t.orders.c.customer_id, t.orders.c.address_change_pending))).all()}
        audit = (await conn.execute(select(t.audit_log.c.entity, t.audit_log.c.entity_id, t.audit_log.c.action,
                                           t.audit_log.c.at, t.audit_log.c.outcome).where(
            t.audit_log.c.action.in_(("ship", "change_address", "confirm_relabel", "complete", "settlement_hold"))
        ).order_by(t.audit_log.c.id))).all()
    first: dict[tuple[str, str], Any] = {}
    for line in audit:
        if line.outcome == "ok":
            first.setdefault((line.entity_id, line.action), line.at)
    stale = wrong = 0
    for no, o in day.tally.shipped_by_us.items():
        row = orders[no]
        if o.exception == "address":
            shipped, changed = first.get((no, "ship")), first.get((no, "change_address"))
            relabelled = first.get((no, "confirm_relabel"))
            if row.address != o.new_address or not (changed and relabelled and shipped and changed <= relabelled <= shipped):
                stale += 1
        expected = o.new_waybill if o.exception == "address" else o.waybill
        if row.state not in SHIPPED_OR_LATER or row.waybill != expected or row.store != o.store:
            wrong += 1
    by_external: dict[str, int] = defaultdict(int)
    for order in orders.values():
        by_external[order.external_id] += 1
    wrong += sum(1 for n in by_external.values() if n > 1)  # one channel order made twice
    finished = {o.external_id for o in day.tally.shipped_by_us.values()}
    missed = [o.external_id for o in planned if o.exception != "courier" and o.external_id not in finished
              and o.external_id not in day.tally.out_of_stock]
    holds = {a.entity_id: a.at for a in audit if a.action == "settlement_hold" and a.outcome == "ok"}
    settled_held = sum(1 for a in audit if a.action == "complete" and a.outcome == "ok"
                       and (held := holds.get(orders[a.entity_id].customer_id)) is not None and a.at >= held)
    shipped_total = sum(1 for r in orders.values() if r.state in SHIPPED_OR_LATER)
    return {"stale": stale, "wrong": wrong, "missed": missed, "settled_held": settled_held,
            "held_customers": len(holds), "shipped_total": shipped_total, "orders_total": len(orders),
            "states": _count(r.state for r in orders.values())}


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for v in values:
        out[v] += 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


async def dashboard(day: Day) -> dict[str, Any]:
    """The manager's way in: the link `概况` sends (signed with DASHBOARD__SECRET), its session, then the JSON."""
    from benchmarks.peak_day import DASHBOARD_SECRET

    url = link(DashboardSigner(DASHBOARD_SECRET.encode()), day.base, "limin", utcnow(), 15)
    async with day.http.get(url, allow_redirects=False) as answer:
        assert answer.status == 303, answer.status
    async with day.http.get(f"{day.base}/api/v1/health") as answer:
        assert answer.status == 200, await answer.text()
        return dict(await answer.json())


def after_seen(day: Day) -> list[float]:
    """Out of stock: from the order being visible (created, left paid) to the push reaching each supervisor —
    the delivery's share of the exception's latency, without the channel push's wait in the inbound queue."""
    out = []
    for e in day.tally.exceptions:
        seen = day.tally.seen_out_of_stock.get(e.order_no)
        for person in e.recipients if seen is not None else ():
            reached = day.wecom.first_urgent(person, e.order_no, e.word, e.sent)
            if reached is not None:
                out.append(max(0.0, reached - seen))
    return out


def exception_pushes(day: Day) -> tuple[list[float], list[float], dict[str, list[float]], int]:
    """Latency from each exception to its push reaching each person it is for (all, those at their cap, by kind)."""
    every: list[float] = []
    capped: list[float] = []
    kinds: dict[str, list[float]] = defaultdict(list)
    missing = 0
    for e in day.tally.exceptions:
        for person in e.recipients:
            reached = day.wecom.first_urgent(person, e.order_no, e.word, e.sent)
            if reached is None:
                missing += 1
                continue
            every.append(reached - e.sent)
            kinds[e.kind].append(reached - e.sent)
            if day.wecom.at_cap(person, e.sent):
                capped.append(reached - e.sent)
    return every, capped, kinds, missing


async def report(args: argparse.Namespace, day: Day, planned: list[Planned], db: Database, server: ServerProcess,
                 before: Samples, cpu0: float, wall: float, sampler: BacklogSampler, rss0: float, machine: str) -> dict[str, Any]:
    """Prints the figures; returns the ones a test checks."""
    tally = day.tally
    for _ in range(60):  # let the exception pushes still queued leave before reading outcomes (30 s at most)
        if all(any(day.wecom.first_urgent(p, e.order_no, e.word, e.sent) for p in e.recipients)
               for e in tally.exceptions):
            break
        await asyncio.sleep(0.5)
    cpu = server.cpu_s() - cpu0
    after = await scrape(day.http, day.base)
    rss = peak_rss_mib(server.proc.pid)
    d = delta(after, before)
    got = await outcomes(db, day, planned)
    health = await dashboard(day)
    every, capped, kinds, missing = exception_pushes(day)
    transitions = sum(summed(d, "orderbot_transitions_total").values())
    shown, dropped = len(day.wecom.messages), len(day.wecom.dropped)
    print(f"peak day: {args.orders} orders planned, db={args.db}, day squeezed into {args.day_s:g} s, seed {args.seed}")
    print(f"  wall {wall:.1f} s (first arrival due → last order's last step); orders started "
          f"{args.orders - tally.not_started}, cut by --max-seconds {tally.cut}, not started {tally.not_started}; "
          f"shipped by the hands {len(tally.shipped_by_us)}, flows failed {len(tally.failed)}")
    per_order = cpu / max(1, len(tally.shipped_by_us))
    print(f"  persisted transitions {transitions:.0f} → {transitions / wall:.1f} /s; server CPU {cpu:.0f} s "
          f"({cpu / wall:.0%} of one core), {per_order * 1000:.0f} ms per order shipped (extrapolated, not measured: "
          f"18,000 orders ≈ {per_order * 18000 / 60:.0f} min of one core); peak RSS {rss:.0f} MiB (after start-up "
          f"{rss0:.0f} MiB)")
    print(f"  channel → order allocated: p50 {_ms(tally.arrivals, 0.5)}, p99 {_ms(tally.arrivals, 0.99)}; "
          f"chat step (callback → state visible, {len(tally.chat_steps)} steps): p50 {_ms(tally.chat_steps, 0.5)}, "
          f"p99 {_ms(tally.chat_steps, 0.99)}, max {_ms(tally.chat_steps, 1.0)}; callbacks {dict(day.chat.statuses)}")
    print(f"  pushes shown at the fake WeCom {shown} (dropped over the 30/min cap {dropped}), card updates "
          f"{len(day.wecom.card_updates)}")
    print(f"  exception → push reaching the person ({len(tally.exceptions)} exceptions, {len(every)} pushes, "
          f"{missing} never arrived): p50 {_ms(every, 0.5)}, p99 {_ms(every, 0.99)}; people at their cap "
          f"({len(capped)}): p99 {_ms(capped, 0.99)}; by kind "
          + ", ".join(f"{k} n={len(v)} p99 {_ms(v, 0.99)}" for k, v in sorted(kinds.items()))
          + f"; out of stock from the order visible (the state watcher's {day.watch.every_s * 1000:.0f} ms tick): "
            f"p99 {_ms(after_seen(day), 0.99)}")
    print(f"  outcomes: shipped to a stale address {got['stale']}, held customers settled {got['settled_held']} "
          f"({got['held_customers']} customers held), wrong shipments {got['wrong']}, missed shipments "
          f"{len(got['missed'])} (of which flows failed {len(tally.failed)}, cut {tally.cut}, not started "
          f"{tally.not_started}); relabel cards not seen in {args.card_wait_s:g} s {tally.cards_not_seen}; "
          f"settlements {tally.settlements}; refunds {tally.refunds}")
    today = health["ranges"]["today"]
    fc = today["first_contact"]
    print(f"  first-contact resolution (dashboard, today): mean {fc['mean_s']} s, median {fc['median_s']} s, "
          f"answered {fc['answered']}, open {health['open_inquiries']}")
    print("  dashboard today: " + json.dumps({
        "processing_overall_s": today["processing"]["overall_s"], "shipped": today["processing"]["shipped"],
        "anomaly_rate_%": today["anomalies"]["rate"], "orders_by_state": {s["state"]: s["count"] for s in today["orders_by_state"]},
        "pushes": {k: today["pushes"][k] for k in ("delivered", "pending", "dead")},
        "open_exceptions": {k["kind"]: k["count"] for k in health["open_exceptions"]["by_kind"]},
        "consistency": health["consistency"]["score"]}, ensure_ascii=False))
    _where_time_went(d, wall, sampler)
    me = resource.getrusage(resource.RUSAGE_SELF)
    print(f"  this process (client, fake WeCom/Douyin/courier): {me.ru_utime + me.ru_stime:.0f} s CPU in all")
    print(f"  PostgreSQL sessions of the server: {machine}; state reads {day.watch.queries}, failed "
          f"{len(day.watch.errors)} {day.watch.errors[:1]}")
    for line in tally.failed[:5]:
        print(f"  failed: {line}")
    return {**got, "missed": len(got["missed"]), "failed": len(tally.failed), "shipped_by_us": len(tally.shipped_by_us),
            "chat_steps": len(tally.chat_steps), "exception_pushes": len(every), "pushes_missing": missing,
            "first_contact_answered": fc["answered"], "settlements": dict(tally.settlements), "wall_s": wall,
            "transitions": transitions, "rss_mib": rss}


def _where_time_went(d: Samples, wall: float, sampler: BacklogSampler) -> None:
    counts = summed(d, "orderbot_command_duration_seconds_count", "command")
    sums = summed(d, "orderbot_command_duration_seconds_sum", "command")
    busy = sorted(((sums[k], counts[k], k) for k in counts if counts[k]), reverse=True)
    handled = sum(counts.values())
    print(f"  inbound messages handled through the bus {handled:.0f} → {handled / wall:.1f} /s")
    print("  server time by command (sum of bus time, count, mean): " + "; ".join(
        f"{k} {s:.0f} s/{n:.0f}/{s / n * 1000:.0f} ms" for s, n, k in busy[:8]))
    acks = summed(d, "orderbot_callback_duration_seconds_sum", "route")
    ack_n = summed(d, "orderbot_callback_duration_seconds_count", "route")
    print("  callback acknowledgements (count, mean): " + "; ".join(
        f"{k} {ack_n[k]:.0f}/{acks[k] / ack_n[k] * 1000:.1f} ms" for k in sorted(ack_n) if ack_n[k]))
    results = summed(d, "orderbot_deliveries_total", "result")
    retries = summed(d, "orderbot_deliveries_total", "channel", result="retry")
    print(f"  deliveries by result {({k: int(v) for k, v in results.items()})} (retries by channel "
          f"{({k: int(v) for k, v in retries.items() if v})}); backlog peaks "
          f"{({k: round(v, 1) for k, v in sampler.peaks.items()})}; bus time {sum(sums.values()):.0f} s in {wall:.0f} s")

