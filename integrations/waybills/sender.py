"""Outbox channel "waybill": take the e-waybill a WaybillRequest row asks for from the store's provider, then hand
the answer to `record` (bot/ runs RecordWaybill through the bus: the number on the order, audited, and the label
row for the printer, in one transaction).

A retry after a time-out sends the same request_id, which the provider answers with the same number (see the
providers' notes); a refusal the provider calls final kills the row at once, and the dead row becomes a task card
(integrations/waybills/dead.py).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

import httpx

from domain.outbox_systems import WaybillRequest
from domain.waybills import IssuedWaybill
from integrations.delivery.rows import OutboxRow, PermanentDelivery, RetryableDelivery, SetAside
from integrations.delivery.set_aside import UNCONFIGURED
from integrations.waybills.base import WaybillError, WaybillProvider

log = logging.getLogger(__name__)

CHANNEL = "waybill"
Record = Callable[[WaybillRequest, IssuedWaybill], Awaitable[None]]


class WaybillSender:
    def __init__(self, providers: Mapping[str, WaybillProvider], provider_for: Callable[[str], str],
                 record: Record) -> None:
        self._providers = dict(providers)
        self._provider_for = provider_for
        self._record = record

    async def deliver(self, row: OutboxRow) -> None:
        request = WaybillRequest.from_payload(row.recipient, row.payload)
        name = self._provider_for(request.store)
        provider = self._providers.get(name)
        if provider is None:
            raise SetAside(UNCONFIGURED, f"not configured: no e-waybill provider for store {request.store}")
        try:
            if request.discard:
                await self._discard(provider, request)
            issued = await provider.issue(request)
        except WaybillError as err:
            log.warning("waybill row %s (order %s, %s) refused: %s", row.id, request.order_no, name, err)
            raise (RetryableDelivery(str(err)) if err.retry else PermanentDelivery(str(err))) from err
        except (httpx.HTTPError, ValueError) as err:
            raise RetryableDelivery(f"{name}: {type(err).__name__}: {err}") from err
        log.info("waybill row %s: order %s got %s %s from %s", row.id, request.order_no, issued.courier,
                 issued.waybill, name)
        await self._record(request, issued)

    @staticmethod
    async def _discard(provider: WaybillProvider, request: WaybillRequest) -> None:
        """The old waybill first; a final refusal (already void, unknown) does not stop the new one being taken."""
        try:
            await provider.discard(request.discard, request)
        except WaybillError as err:
            if err.retry:
                raise
            log.warning("order %s: old waybill %s not discarded at %s: %s", request.order_no, request.discard,
                        provider.name, err)
