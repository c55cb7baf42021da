"""The wire form of events: every event type has a stable name and a JSON payload; signatures verify only
for the secret, the body and a fresh timestamp they were made with."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from domain import events as e
from domain import facts as f
from domain.event_wire import WIRE_NAME, WIRE_NAMES, to_wire, wire_name
from handlers.publish import creation_first
from integrations.db.events import PublishedEvent
from integrations.events import signing, wire


def all_event_types() -> set[type[e.Event]]:
    found: set[type[e.Event]] = set()
    todo = [e.Event]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if dataclasses.is_dataclass(sub):
                found.add(sub)
    return found


def test_every_event_type_has_its_own_wire_name() -> None:
    import domain.facts  # noqa: F401  (facts register their subclasses on import)

    missing = {kind.__name__ for kind in all_event_types()} - {kind.__name__ for kind in WIRE_NAMES}
    assert not missing, f"events without a wire name: {missing}"
    names = list(WIRE_NAMES.values())
    assert len(set(names)) == len(names)
    assert all(WIRE_NAME.fullmatch(name) for name in names)


def test_an_event_becomes_json_with_its_order_number() -> None:
    shipped = to_wire(e.OrderShipped("OB00000012", "SF1", "SH01", (("BP-001", 2),), "C1", "138", 39_800))
    assert (shipped.type, shipped.order_no) == ("order.shipped", "OB00000012")
    assert json.loads(json.dumps(shipped.data))["items"] == [["BP-001", 2]]
    held = to_wire(f.SettlementHeld("C1", "overdue", "system", "rule"))
    assert (held.type, held.order_no, held.actor, held.via) == ("customer.settlement_held", None, "system", "rule")


def test_an_unnamed_event_still_goes_out_under_a_derived_name() -> None:
    @dataclasses.dataclass(frozen=True)
    class PalletWrapped(e.Event):
        order_no: str

    assert wire_name(PalletWrapped("OB1")) == "other.pallet_wrapped"


def test_an_order_created_paid_is_created_before_it_is_paid() -> None:
    paid = e.OrderStateChanged("OB1", "pay", "pending_payment", "paid", part_of_creation=True)
    created = e.OrderCreated("OB1", "douyin", "paid")
    other = e.OrderStateChanged("OB2", "pick", "split", "picking")
    assert creation_first([other, paid, created]) == [other, created, paid]


def _moved_one_by_one(events: list[e.Event]) -> list[e.Event]:
    """The rule written the slow, obvious way: each creation, in turn, just before the first step of it."""
    ordered = list(events)
    for creation in [ev for ev in ordered if isinstance(ev, e.OrderCreated)]:
        first = next(i for i, ev in enumerate(ordered) if ev is creation or (
            isinstance(ev, e.OrderStateChanged) and ev.part_of_creation and ev.order_no == creation.order_no))
        ordered = [ev for ev in ordered if ev is not creation]
        ordered.insert(first, creation)
    return ordered


_step = st.builds(e.OrderStateChanged, st.sampled_from(["OB1", "OB2", "OB3"]), st.just("pay"),
                  st.just("pending_payment"), st.just("paid"), part_of_creation=st.booleans())
_creation = st.builds(e.OrderCreated, st.sampled_from(["OB1", "OB2", "OB3"]), st.just("douyin"), st.just("paid"))


@given(st.lists(st.one_of(_step, _creation), max_size=30))
def test_creations_move_before_their_steps_as_the_rule_says_in_one_pass(events: list[e.Event]) -> None:
    got = creation_first(events)
    assert [id(ev) for ev in got] == [id(ev) for ev in _moved_one_by_one(events)]


def test_an_import_sized_unit_of_work_is_ordered_in_one_pass() -> None:
    events: list[e.Event] = []
    for n in range(3000):
        no = f"OB{n:08d}"
        events += [e.OrderStateChanged(no, "pay", "pending_payment", "paid", part_of_creation=True),
                   e.OrderCreated(no, "douyin", "paid")]
    got = creation_first(events)
    assert [type(ev) for ev in got[:2]] == [e.OrderCreated, e.OrderStateChanged] and len(got) == 6000


def test_a_signature_verifies_only_with_its_secret_body_and_a_fresh_timestamp() -> None:
    body = b'{"id":1}'
    headers = signing.signed_headers("s" * 20, 1_760_000_000, body)
    assert signing.verify("s" * 20, headers, body, now=1_760_000_100)
    assert not signing.verify("t" * 20, headers, body, now=1_760_000_100)
    assert not signing.verify("s" * 20, headers, b'{"id":2}', now=1_760_000_100)
    assert not signing.verify("s" * 20, headers, body, now=1_760_000_000 + 301)
    assert not signing.verify("s" * 20, {**headers, signing.TIMESTAMP_HEADER: "1760000001"}, body, now=1_760_000_000)


def test_the_subject_is_orderbot_orders_and_the_event_name() -> None:
    event = PublishedEvent(7, "order.state_changed", "OB1", datetime(2026, 2, 6, tzinfo=UTC), "wh1", "wecom", {})
    assert wire.subject(event) == "orderbot.orders.order.state_changed"
    assert json.loads(wire.body(event)) == {"id": 7, "type": "order.state_changed", "order_no": "OB1",
                                            "at": "2026-02-06T00:00:00Z", "actor": "wh1", "via": "wecom", "data": {}}
