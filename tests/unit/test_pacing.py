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
