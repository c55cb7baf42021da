"""Address validation: is a delivery address precise enough (street and house number) for a courier?

`AddressValidator` is what the use cases see; `integrations.geo.amap` is the Amap (高德) implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

UNVERIFIED = "unverified"  # the geocoder could not be asked (time-out, 5xx, quota): the address is not judged


@dataclass(frozen=True)
class AddressCheck:
    ok: bool  # the change may go ahead (a resolved street and number, or unverified)
    level: str  # the geocoder's match level ("门牌号", "区县", ...), or UNVERIFIED
    formatted: str  # the geocoder's reading of the address, "" when none
    reason: str  # in Chinese, for the customer and customer service; "" when the address resolved

    @property
    def unverified(self) -> bool:
        return self.level == UNVERIFIED


class AddressValidator(Protocol):
    async def validate(self, address: str) -> AddressCheck: ...
