"""Refund rules per order, not per request: the amount left, the approval lines at their exact values (README:
"refunds up to ¥200 approve themselves", "above ¥2,000 a supervisor first, then a manager"), unpaid orders;
and hypothesis over any sequence of requests, approvals and rejections on one order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import events
from domain.aftersale import AfterSale, ApprovalPolicy, OrderRefunds, claimed_fen, open_aftersale
from domain.errors import DomainError, GuardRefused, InvalidInput

NOW = datetime(2026, 11, 24, 2, 42, tzinfo=UTC)
POLICY = ApprovalPolicy(auto_limit_fen=20_000, dual_limit_fen=200_000)
SUP, MGR = frozenset({"supervisor"}), frozenset({"manager"})


def request(amount_fen: int, *, paid_fen: int = 1_000_000, claimed: int = 0, paid: bool = True,
            order_amount_fen: int | None = None) -> AfterSale:
    return open_aftersale(
        aftersale_no="AS000009", order_no="OB00000001", order_amount_fen=order_amount_fen or paid_fen,
        refunds=OrderRefunds(paid, paid_fen, claimed), kind="refund", reason="异响", amount_fen=amount_fen,
        requested_by="cs1", policy=POLICY, at=NOW,
    )


# --- the auto-approve line: up to ¥200.00 approves itself ---

def test_exactly_the_auto_limit_approves_itself_and_one_fen_more_waits() -> None:
    assert request(20_000).state == "approved"
    assert request(20_001).state == "pending_approval"


def test_the_auto_limit_counts_what_the_order_already_claims() -> None:
    assert request(10_000, claimed=10_000).state == "approved"  # ¥200.00 in all: still the line
    assert request(10_001, claimed=10_000).state == "pending_approval"
    assert request(19_900, claimed=19_900).state == "pending_approval"  # the second ¥199 of a split ¥398


# --- the dual line: exactly ¥2,000.00 needs one supervisor, ¥2,000.01 a manager too ---

def test_exactly_the_dual_limit_needs_one_supervisor_only() -> None:
    case = request(200_000)
    assert case.state == "pending_approval"
    assert case.approve("sup1", SUP, POLICY, NOW) is True
    assert case.state == "approved" and [a.role for a in case.approvals] == ["supervisor"]


def test_a_manager_alone_may_approve_exactly_the_dual_limit() -> None:
    case = request(200_000)
    assert case.approve("mgr1", MGR, POLICY, NOW) is True


def test_one_fen_above_the_dual_limit_needs_a_supervisor_then_a_manager() -> None:
    case = request(200_001)
    with pytest.raises(GuardRefused, match="需主管先审批"):
        case.approve("mgr1", MGR, POLICY, NOW)
    assert case.approve("sup1", SUP, POLICY, NOW) is False
    assert case.state == "pending_approval"
    assert case.approve("mgr1", MGR, POLICY, NOW) is True
    assert [a.role for a in case.approvals] == ["supervisor", "manager"]


def test_the_dual_limit_counts_what_the_order_already_claims() -> None:
    at_line = request(50_000, claimed=150_000)
    assert at_line.approve("sup1", SUP, POLICY, NOW, order_claimed_fen=150_000) is True
    over = request(50_001, claimed=150_000)
    assert over.approve("sup1", SUP, POLICY, NOW, order_claimed_fen=150_000) is False
    assert over.state == "pending_approval"
    [opened] = [e for e in over.events if isinstance(e, events.AfterSaleOpened)]
    assert opened.needs_manager is True


# --- what is left of what was paid ---

def test_three_199_refunds_on_a_256_order_the_second_is_refused_naming_what_is_left() -> None:
    first = request(19_900, paid_fen=25_600)
    assert first.state == "approved"
    with pytest.raises(InvalidInput) as refused:
        request(19_900, paid_fen=25_600, claimed=claimed_fen([first]))
    assert "¥57.00" in refused.value.reason and "¥199.00" in refused.value.reason
    assert request(5_700, paid_fen=25_600, claimed=19_900).state == "pending_approval"  # ¥256 in all > ¥200


def test_a_rejected_request_frees_its_amount_and_a_pending_one_holds_it() -> None:
    pending = request(25_000, paid_fen=25_600)
    assert claimed_fen([pending]) == 25_000
    pending.reject("sup1", SUP, "超过退货期", NOW)
    assert claimed_fen([pending]) == 0
    pending.fire("close", NOW)
    assert claimed_fen([pending]) == 0  # closed after a rejection: still nothing paid out
    refunded = request(100, paid_fen=25_600)
    refunded.fire("refund", NOW)
    refunded.fire("close", NOW)
    assert claimed_fen([refunded]) == 100  # closed after the refund: paid out


def test_a_child_order_caps_at_its_own_amount_and_at_what_is_left_of_the_whole() -> None:
    with pytest.raises(InvalidInput, match="¥100.00"):
        request(10_001, paid_fen=50_000, order_amount_fen=10_000)
    with pytest.raises(InvalidInput, match="¥50.00"):
        request(5_001, paid_fen=50_000, claimed=45_000, order_amount_fen=10_000)


def test_no_after_sale_on_an_unpaid_order() -> None:
    with pytest.raises(GuardRefused, match="尚未支付"):
        request(100, paid=False)


# --- any sequence on one order ---

@dataclass
class Order:
    paid_fen: int
    cases: list[AfterSale] = field(default_factory=list)

    def open(self, amount_fen: int) -> None:
        try:
            self.cases.append(open_aftersale(
                aftersale_no=f"AS{len(self.cases):06d}", order_no="OB1", order_amount_fen=self.paid_fen,
                refunds=OrderRefunds(True, self.paid_fen, claimed_fen(self.cases)), kind="refund", reason="",
                amount_fen=amount_fen, requested_by="cs1", policy=POLICY, at=NOW,
            ))
        except InvalidInput:
            pass

    def decide(self, index: int, by: str, approve: bool) -> None:
        if not self.cases:
            return
        i = index % len(self.cases)
        roles = {"sup1": SUP, "sup2": SUP, "mgr1": MGR, "boss": SUP | MGR}[by]
        try:
            if approve:
                self.cases[i].approve(by, roles, POLICY, NOW, order_claimed_fen=claimed_fen(self.cases[:i]))
            else:
                self.cases[i].reject(by, roles, "", NOW)
        except DomainError:
            pass


APPROVED = {"approved", "return_in_transit", "received", "refunded", "replaced"}
amounts = st.one_of(
    st.integers(0, 300_000),
    st.integers(0, 25_000),
    st.sampled_from([19_900, 20_000, 20_001, 100_000, 150_000, 199_999, 200_000, 200_001]),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("open"), amounts),
        st.tuples(st.just("decide"), st.integers(0, 6), st.sampled_from(["sup1", "sup2", "mgr1", "boss"]),
                  st.booleans()),
    ),
    max_size=25,
)


@settings(max_examples=400, deadline=None)
@given(paid_fen=st.one_of(st.integers(1, 600_000), st.sampled_from([25_600, 20_000, 200_000, 600_000])), steps=steps)
def test_approved_never_exceeds_paid_and_every_crossed_line_got_its_approvals(
    paid_fen: int, steps: list[tuple]
) -> None:
    order = Order(paid_fen)
    for step in steps:
        if step[0] == "open":
            order.open(step[1])
        else:
            order.decide(*step[1:])
        approved = [a for a in order.cases if a.state in APPROVED]
        assert sum(a.amount_fen for a in approved) <= paid_fen
        assert claimed_fen(order.cases) <= paid_fen
        # any set of approved refunds crossing a line holds one that got that line's approvals: the cases
        # without them must together stay within the line
        assert sum(a.amount_fen for a in approved if not a.approvals) <= POLICY.auto_limit_fen
        without_manager = [a for a in approved if "manager" not in {x.role for x in a.approvals}
                           or "supervisor" not in {x.role for x in a.approvals}]
        assert sum(a.amount_fen for a in without_manager) <= POLICY.dual_limit_fen
