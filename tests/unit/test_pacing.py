"""Background work waits for callbacks being acknowledged, but never longer than its bound."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from bot.pacing import AckPacer


async def test_work_waits_while_a_callback_is_answered_and_goes_on_after() -> None:
    pacer = AckPacer(max_wait_s=5)
    answered = asyncio.Event()
    order: list[str] = []

    async def slow_ack(request: web.Request) -> web.StreamResponse:
        await answered.wait()
        order.append("ack")
        return web.Response(text="")

    ack = asyncio.create_task(pacer.middleware()(make_mocked_request("POST", "/wecom/callback"), slow_ack))
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


async def test_the_wait_is_bounded_and_other_routes_do_not_count() -> None:
    pacer = AckPacer(max_wait_s=0.05)
    never: asyncio.Event = asyncio.Event()

    async def stuck(request: web.Request) -> web.StreamResponse:
        await never.wait()
        return web.Response()

    api = asyncio.create_task(pacer.middleware()(make_mocked_request("POST", "/api/v1/orders"), stuck))
    await asyncio.sleep(0)
    assert pacer.in_flight == 0
    ack = asyncio.create_task(pacer.middleware()(make_mocked_request("POST", "/wecom/callback"), stuck))
    await asyncio.sleep(0)
    await asyncio.wait_for(pacer.yield_to_acks(), timeout=1)  # returns after max_wait_s, not never
    for task in (api, ack):
        task.cancel()
    await asyncio.gather(api, ack, return_exceptions=True)
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
