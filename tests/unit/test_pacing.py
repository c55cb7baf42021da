"""Background work waits for callbacks being acknowledged, but never longer than its bound."""

from __future__ import annotations

import asyncio

from bot.pacing import AckPacer


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


async def test_outbox_delivery_waits_for_the_acknowledgement_too() -> None:
    from bot.pacing import PacedSender

    pacer = AckPacer(max_wait_s=5)
    delivered: list[int] = []

    class Recorder:
        async def deliver(self, row: object) -> None:
            delivered.append(1)

    pacer.in_flight, gate = 1, pacer._idle
    gate.clear()
    sending = asyncio.create_task(PacedSender(Recorder(), pacer.yield_to_acks).deliver(object()))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert delivered == []
    pacer.in_flight = 0
    gate.set()
    await sending
    assert delivered == [1]
