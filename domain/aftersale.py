"""The AfterSale aggregate (退换货/退款): its lifecycle and who may approve how much."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain import events
from domain.errors import Forbidden, GuardRefused, InvalidInput
from domain.lifecycle import Lifecycle, NextStep, StateSpec, TransitionSpec

KINDS = {"refund": "仅退款", "return": "退货退款", "exchange": "换货"}

STATES = (
    StateSpec("requested", "已申请", waiting="等待提交审批"),
    StateSpec("pending_approval", "待审批", next=(NextStep("approve", "同意", "同意"),)),
    StateSpec("approved", "已同意", on_enter=("_entered_approved",), waiting="等待退款、换货或寄回退货"),
    StateSpec("rejected", "已拒绝", on_enter=("_entered_rejected",), waiting="等待关闭"),
    StateSpec("return_in_transit", "退货在途", waiting="等待收到退货"),
    StateSpec("received", "退货已收", waiting="等待退款或换货"),
    StateSpec("refunded", "已退款", waiting="等待关闭"),
    StateSpec("replaced", "已换货", waiting="等待关闭"),
    StateSpec("closed", "已关闭", waiting="流程已结束"),
)

TABLE = (
    TransitionSpec("submit", ("requested",), "pending_approval", "提交审批", done="已提交审批"),
    TransitionSpec("auto_approve", ("requested",), "approved", "自动同意", done="已自动同意"),
    TransitionSpec("approve", ("pending_approval",), "approved", "同意", done="已同意"),
    TransitionSpec("reject", ("pending_approval",), "rejected", "拒绝", done="已拒绝"),
    TransitionSpec("return_shipped", ("approved",), "return_in_transit", "寄回退货", done="退货已寄回"),
    TransitionSpec("receive", ("return_in_transit",), "received", "收到退货", done="已收到退货"),
    TransitionSpec("refund", ("approved", "received"), "refunded", "退款", done="已退款"),
    TransitionSpec("replace", ("approved", "received"), "replaced", "换货发出", done="换货已发出"),
    TransitionSpec("close", ("refunded", "replaced", "rejected"), "closed", "关闭", done="已关闭"),
)

AFTERSALE_LIFECYCLE = Lifecycle("aftersale", STATES, TABLE)


OPENING_TRIGGERS = frozenset({"submit", "auto_approve"})  # fired by open_aftersale only: part of the opening

@dataclass(frozen=True)
class ApprovalPolicy:
    """Up to `auto_limit_fen` approves itself; above `dual_limit_fen` a supervisor and then a manager.

    Both lines apply to the order's total claimed by after-sales (this request included), never to one
    request alone: splitting ¥600 into three ¥199 requests does not make any of them "small"."""

    auto_limit_fen: int = 20_000
    dual_limit_fen: int = 200_000

    def needs_approval(self, total_fen: int) -> bool:
        return total_fen > self.auto_limit_fen or self.needs_manager(total_fen)

    def needs_manager(self, total_fen: int) -> bool:
        return total_fen > self.dual_limit_fen


@dataclass(frozen=True)
class OrderRefunds:
    """What the customer paid for an order (a split order's parent and children together) and what its
    after-sales already claim: every one not rejected, pending ones included, so two requests in flight can
    never together pass the amount paid or dodge an approval line."""

    paid: bool
    paid_fen: int
    claimed_fen: int = 0

    @property
    def left_fen(self) -> int:
        return max(self.paid_fen - self.claimed_fen, 0)


def claimed_fen(aftersales: Iterable[AfterSale]) -> int:
    """The sum the after-sales claim against their order: all but the rejected ones."""
    return sum(a.amount_fen for a in aftersales if a.counts_against_order)


@dataclass(frozen=True)
class Approval:
    by: str
    role: str
    at: datetime


@dataclass
class AfterSale:
    aftersale_no: str
    order_no: str
    kind: str
    reason: str
    amount_fen: int
    requested_by: str
    created_at: datetime
    category: str = "其他"
    state: str = "requested"
    approvals: list[Approval] = field(default_factory=list)
    rejected_by: str | None = None
    decision_note: str = ""
    updated_at: datetime | None = None
    version: int = 0
    events: list[events.Event] = field(default_factory=list, repr=False, compare=False)

    @property
    def state_label(self) -> str:
        return AFTERSALE_LIFECYCLE.label(self.state)

    @property
    def counts_against_order(self) -> bool:
        """Pending, approved and carried-out cases claim part of what was paid; a rejected one (closed or not) does not."""
        return self.state != "rejected" and self.rejected_by is None

    def fire(self, trigger: str, at: datetime, **ctx: Any) -> tuple[str, str]:
        before, after = AFTERSALE_LIFECYCLE.fire(self, trigger, at=at, **ctx)
        self.updated_at = at
        reason = str(ctx.get("reason") or "")
        self.events.append(events.AfterSaleStateChanged(
            self.aftersale_no, trigger, before, after, reason, part_of_creation=trigger in OPENING_TRIGGERS))
        return before, after

    def approve(
        self, by: str, roles: frozenset[str], policy: ApprovalPolicy, at: datetime, *, order_claimed_fen: int = 0
    ) -> bool:
        """Record `by`'s approval. Returns True when the after-sale is now approved, False if a second approver is
        still needed. `order_claimed_fen`: what the order's earlier after-sales (not rejected) claim; the dual
        line applies to that plus this amount."""
        AFTERSALE_LIFECYCLE.check(self, "approve", {})
        if not roles & {"supervisor", "manager"}:
            raise Forbidden("只有主管或经理可以审批退款。")
        if any(a.by == by for a in self.approvals):
            raise GuardRefused(f"您已审批过售后单 {self.aftersale_no}，还需另一位经理审批。")
        total_fen = order_claimed_fen + self.amount_fen
        if policy.needs_manager(total_fen):
            if not self.approvals:
                if "supervisor" not in roles:
                    raise GuardRefused(
                        f"订单 {self.order_no} 累计售后金额 ¥{total_fen / 100:,.2f}，超过 "
                        f"¥{policy.dual_limit_fen / 100:,.0f} 的退款需主管先审批，再由经理复核。"
                    )
                self.approvals.append(Approval(by, "supervisor", at))
                self.updated_at = at
                self.events.append(events.ApprovalRecorded(self.aftersale_no, by, "manager"))
                return False
            if "manager" not in roles:
                raise GuardRefused(f"售后单 {self.aftersale_no} 已有主管审批，还需经理复核。")
            self.approvals.append(Approval(by, "manager", at))
        else:
            self.approvals.append(Approval(by, "supervisor" if "supervisor" in roles else "manager", at))
        self.fire("approve", at)
        return True

    def reject(self, by: str, roles: frozenset[str], reason: str, at: datetime) -> None:
        AFTERSALE_LIFECYCLE.check(self, "reject", {})
        if not roles & {"supervisor", "manager"}:
            raise Forbidden("只有主管或经理可以拒绝退款。")
        self.fire("reject", at, by=by, reason=reason)

    # bound automatic actions (StateSpec.on_enter), called by the shared machine with the trigger's ctx
    def _entered_approved(self, **_: Any) -> None:
        """Approved by its approvers, or by the system when the amount needed none (auto_approve)."""
        approvers = tuple(a.by for a in self.approvals) or ("system",)
        self.events.append(events.RefundApproved(self.aftersale_no, self.order_no, self.amount_fen, approvers))

    def _entered_rejected(self, by: str = "system", reason: str = "", **_: Any) -> None:
        self.rejected_by = by
        self.decision_note = reason
        self.events.append(events.RefundRejected(self.aftersale_no, self.order_no, by, reason))


def open_aftersale(
    *,
    aftersale_no: str,
    order_no: str,
    order_amount_fen: int,
    refunds: OrderRefunds,
    kind: str,
    reason: str,
    amount_fen: int,
    requested_by: str,
    policy: ApprovalPolicy,
    at: datetime,
    category: str = "其他",
    photos: tuple[str, ...] = (),
) -> AfterSale:
    """Open a case against an order: only a paid order, for at most what is left of what was paid; whether it
    approves itself or needs one or two approvers is decided by the order's total with this request."""
    if kind not in KINDS:
        raise InvalidInput(f"售后类型只能是：{'、'.join(KINDS)}。")
    if not refunds.paid:
        raise GuardRefused(f"订单 {order_no} 尚未支付，不能申请售后退款。")
    left_fen = min(order_amount_fen, refunds.left_fen)
    if amount_fen < 0 or amount_fen > left_fen:
        earlier = f"，已申请 ¥{refunds.claimed_fen / 100:.2f}" if refunds.claimed_fen else ""
        raise InvalidInput(
            f"退款金额须在 0 到可退金额 ¥{left_fen / 100:.2f} 之间（订单 {order_no} "
            f"实付 ¥{refunds.paid_fen / 100:.2f}{earlier}）。"
        )
    aftersale = AfterSale(
        aftersale_no=aftersale_no,
        order_no=order_no,
        kind=kind,
        reason=reason,
        category=category,
        amount_fen=amount_fen,
        requested_by=requested_by,
        created_at=at,
        updated_at=at,
    )
    total_fen = refunds.claimed_fen + amount_fen
    needs_approval = policy.needs_approval(total_fen)
    aftersale.events.append(events.AfterSaleOpened(
        aftersale_no, order_no, amount_fen, needs_approval, kind, category,
        needs_manager=policy.needs_manager(total_fen), order_claimed_fen=refunds.claimed_fen, photos=photos,
    ))
    aftersale.fire("submit" if needs_approval else "auto_approve", at)  # entering approved raises RefundApproved
    return aftersale
