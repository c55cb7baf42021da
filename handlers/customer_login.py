"""A customer who signs in through a channel's own login (the mini-program's WeChat login), with no order yet:
found or created from the keys the channel gives, by the same rules as an order's buyer (handlers/customers.py).

Also the read a signed-in customer's every request makes: which customer a key names now (following merges)."""

from __future__ import annotations

from dataclasses import dataclass

from domain.commands import Command
from domain.customers import CustomerKeys, Key, keys_in_order
from domain.errors import InvalidInput
from handlers import customers as customer_cases
from handlers.bus import Deps, Router
from handlers.unit_of_work import AbstractUnitOfWork

router = Router()


@dataclass(frozen=True)
class IdentifyCustomer(Command[str]):
    """Returns the customer's id."""

    keys: CustomerKeys
    by: str
    via: str

    def subject(self) -> tuple[str, str]:
        first = next(iter(keys_in_order(self.keys, "")), ("", ""))
        return "customer", first[1]


@router.command(IdentifyCustomer)
async def identify_customer(cmd: IdentifyCustomer, uow: AbstractUnitOfWork, deps: Deps) -> str:
    phone, problem = customer_cases.normalise_phone(cmd.keys.phone)
    keys = keys_in_order(cmd.keys, phone)
    if not keys:
        raise InvalidInput("没有可识别客户的信息（OpenID、手机号等）。")
    asked = customer_cases.Asked("", cmd.keys.name, cmd.keys.phone, keys, problem)
    [customer_id] = await customer_cases.resolve([asked], uow, deps)
    return customer_id


async def customer_named_by(uow: AbstractUnitOfWork, key: Key) -> str | None:
    """The customer `key` names today (a merged customer's survivor), or None when it names nobody."""
    owner = (await uow.customer_keys.owners([key])).get(key)
    seen: set[str] = set()
    while owner is not None and owner not in seen:
        seen.add(owner)
        known = (await uow.customers.known([owner])).get(owner)
        if known is None or not known.merged_into:
            return owner if known is not None else None
        owner = known.merged_into
    return owner
