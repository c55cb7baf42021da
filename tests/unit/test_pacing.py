"""Background work waits for callbacks being acknowledged, but never longer than its bound."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from bot.pacing import AckPacer, PacedSender
from integrations.delivery.rows import OutboxRow


async def test_work_waits_while_a_callback_is_answered_and_goes_on_after() -> None:
    pacer = AckPacer(max_wait_s=5)
    answered = asyncio.Event()
    order: list[str] = []

    async def slow_ack() -> None:
        async with pacer.acknowledging():  # what a callback route does once the callback is verified
            await answered.wait()
            order.append("ack")

    ack = asyncio.create_task(slow_ack())
    await asyncio.sleep(0)
    assert pacer.in_flight == 1

    async def work() -> None:
        await pacer.yield_to_acks()
        order.append("work")

    worker = asyncio.create_task(work())
    await asyncio.sleep(0.05)
    assert order == []  # the work is holding back
    answered.set()
    await asyncio.gather(ack, worker)
    assert order == ["ack", "work"] and pacer.in_flight == 0


async def test_the_wait_is_bounded() -> None:
    pacer = AckPacer(max_wait_s=0.05)
    never: asyncio.Event = asyncio.Event()

    async def stuck() -> None:
        async with pacer.acknowledging():
            await never.wait()

    ack = asyncio.create_task(stuck())
    await asyncio.sleep(0)
    assert pacer.in_flight == 1
    await asyncio.wait_for(pacer.yield_to_acks(), timeout=1)  # returns after max_wait_s, not never
    ack.cancel()
    await asyncio.gather(ack, return_exceptions=True)
    assert pacer.in_flight == 0


async def _flood(pacer: AckPacer, callbacks: int) -> tuple[asyncio.Event, asyncio.Task[list[None]]]:
    """`callbacks` verified callbacks in flight at once; they are answered when the event is set."""
    answered = asyncio.Event()

    async def ack() -> None:
        async with pacer.acknowledging():
            await answered.wait()

    acks = asyncio.gather(*(ack() for _ in range(callbacks)))
    await asyncio.sleep(0)
    assert pacer.in_flight == callbacks
    return answered, acks  # type: ignore[return-value]


async def test_after_a_flood_work_waits_for_it_to_pass_not_only_for_the_callbacks_in_flight() -> None:
    pacer = AckPacer(max_wait_s=5, flood_in_flight=3, flood_hold_s=0.3)
    answered, acks = await _flood(pacer, 3)
    answered.set()
    await acks
    assert pacer.in_flight == 0  # nothing in flight, the moment between two batches of a flood
    worker = asyncio.create_task(pacer.yield_to_acks())
    await asyncio.sleep(0.1)
    assert not worker.done()  # still stepping aside
    await asyncio.wait_for(worker, timeout=2)  # and going on once the flood has passed


async def test_callbacks_below_the_flood_hold_work_back_only_while_in_flight() -> None:
    pacer = AckPacer(max_wait_s=5, flood_in_flight=3, flood_hold_s=5)
    answered, acks = await _flood(pacer, 2)
    answered.set()
    await acks
    await asyncio.wait_for(pacer.yield_to_acks(), timeout=0.05)  # at once: two callbacks are no flood


async def test_under_a_flood_that_does_not_end_work_trickles_one_unit_per_gap() -> None:
    pacer = AckPacer(max_wait_s=0.05, flood_in_flight=3, flood_hold_s=0.1, forced_gap_s=0.4)
    answered, acks = await _flood(pacer, 3)
    passed: list[float] = []
    loop = asyncio.get_running_loop()

    async def unit() -> None:
        await pacer.yield_to_acks()
        passed.append(loop.time())

    started = loop.time()
    units = [asyncio.create_task(unit()) for _ in range(3)]
    await asyncio.sleep(0.3)
    assert len(passed) == 1  # the first waited its bound and went; the others wait for the gap
    await asyncio.wait_for(asyncio.gather(*units), timeout=3)
    gaps = [b - a for a, b in zip(passed, passed[1:], strict=False)]
    assert passed[0] - started >= 0.05 and all(gap >= 0.39 for gap in gaps)
    answered.set()
    await acks


async def test_callbacks_always_in_flight_but_no_flood_hold_each_unit_for_its_bound_only() -> None:
    pacer = AckPacer(max_wait_s=0.1, flood_in_flight=3, forced_gap_s=5)
    answered, acks = await _flood(pacer, 2)  # never answered meanwhile, but two are no flood

    units = asyncio.gather(*(pacer.yield_to_acks() for _ in range(4)))
    await asyncio.wait_for(units, timeout=1)  # all four after their 0.1 s, not one per 5 s gap
    answered.set()
    await acks


async def test_with_no_flood_threshold_many_callbacks_hold_work_back_only_while_in_flight() -> None:
    pacer = AckPacer(max_wait_s=5, flood_in_flight=0, flood_hold_s=5)  # SQLite's pacer
    answered, acks = await _flood(pacer, 30)
    answered.set()
    await acks
    await asyncio.wait_for(pacer.yield_to_acks(), timeout=0.05)


def _row(row_id: int, *, urgent: bool = False) -> OutboxRow:
    return OutboxRow(row_id, "chat", "message", "wh1", {}, 0, datetime.now(UTC), urgent=urgent)


class Recorder:
    def __init__(self) -> None:
        self.delivered: list[int] = []

    async def deliver(self, row: OutboxRow) -> None:
        self.delivered.append(row.id)


async def test_outbox_delivery_waits_for_the_acknowledgement_too() -> None:
    pacer, recorder = AckPacer(max_wait_s=5), Recorder()
    pacer.in_flight, gate = 1, pacer._idle
    gate.clear()
    sending = asyncio.create_task(PacedSender(recorder, pacer.yield_to_acks).deliver(_row(1)))
    await asyncio.sleep(0.05)
    assert recorder.delivered == []
    pacer.in_flight = 0
    gate.set()
    await sending
    assert recorder.delivered == [1]


async def test_an_exception_push_does_not_wait_for_acknowledgements() -> None:
    pacer, recorder = AckPacer(max_wait_s=5), Recorder()
    pacer.in_flight = 1
    pacer._idle.clear()  # a callback is being answered, and stays so
    sender = PacedSender(recorder, pacer.yield_to_acks)
    routine = asyncio.create_task(sender.deliver(_row(1)))

    await asyncio.wait_for(sender.deliver(_row(2, urgent=True)), timeout=1)

    assert recorder.delivered == [2]  # the routine row still steps aside
    routine.cancel()
    await asyncio.gather(routine, return_exceptions=True)
