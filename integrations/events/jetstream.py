"""NATS JetStream: each event published to `orderbot.orders.<event>` with Nats-Msg-Id for de-duplication.

The stream is made on first use if it does not exist (subjects `orderbot.orders.>`). Publishing waits for
the stream's acknowledgement, one event after the other, so the stream holds them in the cursor's order.
A re-sent event (after a crash between the ack and the cursor) carries the same Nats-Msg-Id, and
JetStream drops it within the stream's duplicate window (2 minutes unless the stream says otherwise).
"""

from __future__ import annotations

import logging
from typing import Any

import nats
from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError

from integrations.db.events import PublishedEvent
from integrations.events import wire
from integrations.events.publisher import DeliveryFailed

log = logging.getLogger(__name__)


def message_id(event: PublishedEvent) -> str:
    return f"orderbot-{event.id}"


class JetStreamSubscriber:
    def __init__(self, url: str, stream: str, *, timeout_s: float = 5.0, prefix: str = wire.SUBJECT_PREFIX) -> None:
        self.name = f"jetstream:{stream}"
        self._url = url
        self._stream = stream
        self._timeout_s = timeout_s
        self._prefix = prefix
        self._nc: Any = None
        self._js: Any = None

    def wants(self, event: PublishedEvent) -> bool:
        return True

    async def _connect(self) -> Any:
        if self._js is not None and self._nc is not None and self._nc.is_connected:
            return self._js
        await self.close()
        try:
            self._nc = await nats.connect(
                self._url, connect_timeout=self._timeout_s, allow_reconnect=True, max_reconnect_attempts=-1,
                name="orderbot-events",
            )
            js = self._nc.jetstream(timeout=self._timeout_s)
            try:
                await js.stream_info(self._stream)
            except NotFoundError:
                await js.add_stream(name=self._stream, subjects=[f"{self._prefix}.>"])
                log.info("made JetStream stream %s for %s.>", self._stream, self._prefix)
        except (NatsError, OSError, TimeoutError) as err:
            await self.close()
            raise DeliveryFailed(f"NATS {self._url}: {type(err).__name__}: {err}") from err
        self._js = js
        return js

    async def deliver(self, event: PublishedEvent) -> None:
        js = await self._connect()
        try:
            await js.publish(wire.subject(event, self._prefix), wire.body(event), timeout=self._timeout_s,
                             stream=self._stream, headers={"Nats-Msg-Id": message_id(event)})
        except (NatsError, OSError, TimeoutError) as err:
            raise DeliveryFailed(f"JetStream {self._stream}: {type(err).__name__}: {err}") from err

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            try:
                await nc.close()
            except Exception:  # closing a broken connection must not hide why it broke
                log.debug("closing the NATS connection failed", exc_info=True)
