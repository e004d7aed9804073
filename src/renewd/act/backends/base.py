"""What renewd asks of billing and provisioning, and what they answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

from renewd.core.errors import RenewdError


class TransientError(RenewdError):
    """The backend could not be reached or answered 5xx after every retry: try again next run."""


class NeedsOperator(TransientError):
    """The peer answered something renewd cannot book (a redirect, an answer about another
    charge): the effect stays open, the backend is not used again this run, and the operator is
    told, since only a person can say whether the peer acted."""


@dataclass(frozen=True)
class Charge:
    """One renewal fee, keyed by (mailbox, cycle) so that a retry never charges twice."""

    idempotency_key: str
    account_id: str
    mailbox_id: str
    amount: Decimal
    currency: str
    period_from: date
    period_to: date


@dataclass(frozen=True)
class Removal:
    idempotency_key: str
    account_id: str
    mailbox_id: str
    cycle: date


@dataclass(frozen=True)
class Outcome:
    """`charged`, `declined`, `deleted` or `failed` (refused for good), and a reference."""

    status: str
    reference: str = ""
    error: str = ""


class Billing(Protocol):
    name: str

    async def charge(self, charge: Charge) -> Outcome: ...

    async def close(self) -> None: ...


class Provisioning(Protocol):
    name: str

    async def delete(self, removal: Removal) -> Outcome: ...

    async def close(self) -> None: ...
