"""How orders and after-sales look from the outside (REST API and dashboard)."""

from __future__ import annotations

from typing import Any

from domain.aftersale import AfterSale
from domain.customers import OtherOrder
from domain.order import Order
from domain.order_lifecycle import ORDER_LIFECYCLE
from integrations.db.views import BookedBill


def order_json(order: Order, history: list[dict[str, Any]] | None = None, children: list[Order] | None = None,
               others: tuple[int, list[OtherOrder]] | None = None, k3_bills: list[BookedBill] | None = None
               ) -> dict[str, Any]:
    data: dict[str, Any] = {
        "order_no": order.order_no,
        "channel": order.channel,
        "external_id": order.external_id,
        "state": order.state,
        "label": order.state_label,
        "store": order.store,
        "parent_no": order.parent_no,
        "customer": {"id": order.customer_id, "name": order.customer_name, "phone": order.customer_phone},
        "address": order.address,
        "lines": [
            {"sku": x.sku, "name": x.name, "qty": x.qty, "unit_price": f"{x.unit_price_fen / 100:.2f}"}
            for x in order.lines
        ],
        "amount": f"{order.amount_fen / 100:.2f}",
        "waybill": order.waybill,
        "address_change_pending": order.address_change_pending,
        "settlement_hold": order.settlement_hold,
        "next": [{"trigger": t, "label": ORDER_LIFECYCLE.trigger_label(t)} for t in order.next_steps()],
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "shipped_at": order.shipped_at,
        "version": order.version,
    }
    if others is not None:  # the customer's other orders, on every channel: how many, and the newest
        data["customer"]["other_orders"] = {"total": others[0], "orders": [
            {"order_no": o.order_no, "channel": o.channel, "state": o.state, "label": ORDER_LIFECYCLE.label(o.state)}
            for o in others[1]
        ]}
    if k3_bills is not None:  # the documents booked in K3 Cloud for it
        data["k3_bills"] = [{"kind": b.kind, "ref": b.ref, "bill_no": b.bill_no, "status": b.status} for b in k3_bills]
    if children:
        data["children"] = [{"order_no": c.order_no, "store": c.store, "state": c.state} for c in children]
    if history is not None:
        data["history"] = [history_json(h) for h in history]
    return data


def history_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": row["at"],
        "actor": row["actor"],
        "via": row["via"],
        "action": row["action"],
        "from": row["from_state"],
        "to": row["to_state"],
        "outcome": row["outcome"],
        "reason": row["reason"],
    }


def aftersale_json(a: AfterSale, history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": a.aftersale_no,
        "order_no": a.order_no,
        "kind": a.kind,
        "reason": a.reason,
        "category": a.category,
        "amount": f"{a.amount_fen / 100:.2f}",
        "state": a.state,
        "label": a.state_label,
        "approvals": [{"by": x.by, "role": x.role, "at": x.at} for x in a.approvals],
        "rejected_by": a.rejected_by,
        "decision_note": a.decision_note,
        "requested_by": a.requested_by,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
    }
    if history is not None:
        data["history"] = [history_json(h) for h in history]
    return data
