"""After-sale lifecycle and who may approve how much (auto ≤ ¥200, supervisor ≤ ¥2,000, then + manager)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain import events
from domain.aftersale import AFTERSALE_LIFECYCLE, AfterSale, ApprovalPolicy, OrderRefunds, open_aftersale
from domain.errors import Forbidden, GuardRefused, IllegalTransition, InvalidInput

NOW = datetime(2026, 11, 24, 2, 42, tzinfo=UTC)
POLICY = ApprovalPolicy(auto_limit_fen=20_000, dual_limit_fen=200_000)
SUP, MGR = frozenset({"supervisor"}), frozenset({"manager"})


def case(amount_fen: int) -> AfterSale:
    return open_aftersale(
        aftersale_no="AS000001", order_no="OB00000001", order_amount_fen=1_000_000, kind="refund",
        refunds=OrderRefunds(True, 1_000_000),
        reason="型号不符", amount_fen=amount_fen, requested_by="cs1", policy=POLICY, at=NOW,
    )


def test_small_refund_approves_itself() -> None:
    a = case(20_000)
    assert a.state == "approved"
    assert events.RefundApproved("AS000001", "OB00000001", 20_000, ("system",)) in a.events


def test_mid_refund_needs_one_supervisor() -> None:
    a = case(150_000)
    assert a.state == "pending_approval"
    assert a.approve("sup1", SUP, POLICY, NOW) is True
    assert a.state == "approved"


def test_large_refund_goes_supervisor_then_manager() -> None:
    a = case(350_000)
    assert a.approve("sup1", SUP, POLICY, NOW) is False
    assert a.state == "pending_approval"
    assert a.approve("mgr1", MGR, POLICY, NOW) is True
    assert a.state == "approved"
    assert [x.by for x in a.approvals] == ["sup1", "mgr1"]


def test_large_refund_never_the_same_person_twice() -> None:
    a = case(350_000)
    both = SUP | MGR
    a.approve("boss", both, POLICY, NOW)
    with pytest.raises(GuardRefused, match="您已审批过"):
        a.approve("boss", both, POLICY, NOW)
    assert a.state == "pending_approval"


def test_large_refund_manager_cannot_go_first_and_supervisor_cannot_second() -> None:
    a = case(350_000)
    with pytest.raises(GuardRefused, match="需主管先审批"):
        a.approve("mgr1", MGR, POLICY, NOW)
    a.approve("sup1", SUP, POLICY, NOW)
    with pytest.raises(GuardRefused, match="还需经理复核"):
        a.approve("sup2", SUP, POLICY, NOW)


def test_only_supervisors_and_managers_decide() -> None:
    a = case(150_000)
    with pytest.raises(Forbidden):
        a.approve("wh1", frozenset({"warehouse"}), POLICY, NOW)
    with pytest.raises(Forbidden):
        a.reject("wh1", frozenset({"warehouse"}), "no", NOW)
    assert a.state == "pending_approval"


def test_a_decided_case_cannot_be_decided_again() -> None:
    a = case(150_000)
    a.reject("sup1", SUP, "已超过退货期", NOW)
    assert (a.state, a.rejected_by, a.decision_note) == ("rejected", "sup1", "已超过退货期")
    with pytest.raises(IllegalTransition, match="已拒绝"):
        a.approve("sup2", SUP, POLICY, NOW)


def test_return_path_to_closed() -> None:
    a = case(20_000)
    for trigger, state in [("return_shipped", "return_in_transit"), ("receive", "received"),
                           ("refund", "refunded"), ("close", "closed")]:
        a.fire(trigger, NOW)
        assert a.state == state


def test_amount_must_fit_the_order_and_kind_must_be_known() -> None:
    with pytest.raises(InvalidInput, match="退款金额"):
        open_aftersale(aftersale_no="", order_no="OB1", order_amount_fen=100, kind="refund", reason="",
                       refunds=OrderRefunds(True, 100),
                       amount_fen=101, requested_by="x", policy=POLICY, at=NOW)
    with pytest.raises(InvalidInput, match="售后类型"):
        open_aftersale(aftersale_no="", order_no="OB1", order_amount_fen=100, kind="gift", reason="",
                       refunds=OrderRefunds(True, 100),
                       amount_fen=1, requested_by="x", policy=POLICY, at=NOW)


def test_entering_approved_raises_refund_approved_once_with_who_approved() -> None:
    auto, mid = case(20_000), case(150_000)
    mid.approve("sup1", SUP, POLICY, NOW)
    assert [e for e in auto.events if isinstance(e, events.RefundApproved)] == [
        events.RefundApproved("AS000001", "OB00000001", 20_000, ("system",))]
    assert [e for e in mid.events if isinstance(e, events.RefundApproved)] == [
        events.RefundApproved("AS000001", "OB00000001", 150_000, ("sup1",))]
    opened = [type(e) for e in auto.events if not isinstance(e, events.AfterSaleStateChanged)]
    assert opened == [events.AfterSaleOpened, events.RefundApproved]


def test_entering_rejected_records_who_and_why_and_raises_refund_rejected() -> None:
    a = case(150_000)
    a.reject("sup1", SUP, "已超过退货期", NOW)
    assert events.RefundRejected("AS000001", "OB00000001", "sup1", "已超过退货期") in a.events
    assert not any(isinstance(e, events.RefundApproved) for e in a.events)


def test_the_table_names_the_next_step_waiting_and_done_texts() -> None:
    pending = case(150_000)
    step = AFTERSALE_LIFECYCLE.next_step(pending)
    assert step is not None and (step.key("AS000001"), step.button) == ("approve AS000001", "同意")
    assert AFTERSALE_LIFECYCLE.next_step(case(20_000)) is None
    assert AFTERSALE_LIFECYCLE.waiting("closed") == "流程已结束"
    assert [AFTERSALE_LIFECYCLE.done_label(t) for t in ("approve", "reject", "refund")] == ["已同意", "已拒绝", "已退款"]
