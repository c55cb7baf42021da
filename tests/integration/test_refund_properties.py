"""Hypothesis over refund requests, approvals and rejections on one order, through the bus and a real database
(SQLite and PostgreSQL): whatever the sequence, the approved total never exceeds what was paid, and any set of
approved refunds whose sum crosses a line holds one that got the approvals that line requires."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from domain import commands as c
from domain.aftersale import ApprovalPolicy
from domain.errors import DomainError
from handlers.bus import MessageBus
from integrations.db import tables as t
from integrations.db.engine import Database
from tests.integration.helpers import rows
from tests.integration.test_refund_totals import add_staff, paid_order, refund

POLICY = ApprovalPolicy()  # the defaults: auto ≤ ¥200.00, a manager too above ¥2,000.00
APPROVED = {"approved", "return_in_transit", "received", "refunded", "replaced"}
ORDERS = itertools.count(1)

amounts = st.one_of(st.sampled_from([100, 19_900, 20_000, 20_001, 100_000, 150_000, 200_000, 200_001]),
                    st.integers(0, 300_000))
steps = st.lists(
    st.one_of(
        st.tuples(st.just("open"), amounts),
        st.tuples(st.just("approve"), st.integers(0, 3), st.sampled_from(["sup1", "sup2", "mgr1"])),
        st.tuples(st.just("approve"), st.integers(0, 3), st.sampled_from(["sup1", "sup2", "mgr1"])),
        st.tuples(st.just("reject"), st.integers(0, 5), st.sampled_from(["sup1", "mgr1"])),
    ),
    max_size=10,
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(price_fen=25_600, steps=[("open", 19_900)] * 3)  # the reported attack: three ¥199 on ¥256
@example(price_fen=500_000, steps=[("open", 150_000), ("open", 100_000), ("approve", 0, "sup1"),
                                   ("approve", 1, "sup2")])  # ¥2,500 split under the manager's line
@example(price_fen=500_000, steps=[("open", 100), ("open", 200_000), ("approve", 1, "sup1")])
@example(price_fen=300_000, steps=[("open", 20_000), ("open", 1)])  # ¥200.01 split under the auto line
@given(price_fen=st.sampled_from([25_600, 19_900, 300_000, 500_000]), steps=steps)
async def test_any_sequence_keeps_the_refund_rules(
    bus: MessageBus, db: Database, price_fen: int, steps: list[tuple]
) -> None:
    await add_staff(db)
    order_no = await paid_order(bus, f"HYP{next(ORDERS)}", price_fen=price_fen)
    opened: list[str] = []
    for step in steps:
        try:
            if step[0] == "open":
                opened.append((await refund(bus, order_no, step[1])).aftersale_no)
            elif opened and step[0] == "approve":
                await bus.handle(c.ApproveAfterSale(opened[step[1] % len(opened)], by=step[2], via="wecom"))
            elif opened:
                await bus.handle(c.RejectAfterSale(opened[step[1] % len(opened)], by=step[2], via="wecom"))
        except DomainError:
            pass  # a refusal, with its reason: nothing changed
    cases = await rows(db, t.aftersales, t.aftersales.c.order_no == order_no)
    approved = [r for r in cases if r["state"] in APPROVED]
    assert sum(r["amount_fen"] for r in approved) <= price_fen
    assert sum(r["amount_fen"] for r in cases if r["state"] != "rejected") <= price_fen
    assert sum(r["amount_fen"] for r in approved if not r["approvals"]) <= POLICY.auto_limit_fen
    reviewed = [r for r in approved if {a["role"] for a in r["approvals"]} >= {"supervisor", "manager"}]
    assert sum(r["amount_fen"] for r in approved if r not in reviewed) <= POLICY.dual_limit_fen
