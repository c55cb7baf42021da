"""Background work waits for the callbacks being acknowledged, not for later ones, and never longer than its bound."""

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


async def test_callbacks_arriving_meanwhile_do_not_hold_the_work_back() -> None:
    """Under steady traffic some callback is always in flight: the work waits its turn, not for a quiet moment."""
    pacer = AckPacer(max_wait_s=5)
    first_done, later_done = asyncio.Event(), asyncio.Event()
    order: list[str] = []

    async def ack(done: asyncio.Event, name: str) -> None:
        async with pacer.acknowledging():
            await done.wait()
            order.append(name)

    first = asyncio.create_task(ack(first_done, "first ack"))
    await asyncio.sleep(0)

    async def work() -> None:
        await pacer.yield_to_acks()
        order.append("work")

    worker = asyncio.create_task(work())
    await asyncio.sleep(0)
    later = asyncio.create_task(ack(later_done, "later ack"))  # arrives while the work waits
    await asyncio.sleep(0)
    first_done.set()
    await asyncio.wait_for(worker, timeout=1)  # not max_wait_s: the later callback is still in flight
    assert order == ["first ack", "work"] and pacer.in_flight == 1
    later_done.set()
    await later
    assert pacer.in_flight == 0


async def test_outbox_delivery_waits_for_the_acknowledgement_too() -> None:
    from bot.pacing import PacedSender

    pacer = AckPacer(max_wait_s=5)
    delivered: list[int] = []
    answered = asyncio.Event()

    class Recorder:
        async def deliver(self, row: object) -> None:
            delivered.append(1)

    async def slow_ack() -> None:
        async with pacer.acknowledging():
            await answered.wait()

    ack = asyncio.create_task(slow_ack())
    await asyncio.sleep(0)
    sending = asyncio.create_task(PacedSender(Recorder(), pacer.yield_to_acks).deliver(object()))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert delivered == []
    answered.set()
    await asyncio.gather(ack, sending)
    assert delivered == [1]
