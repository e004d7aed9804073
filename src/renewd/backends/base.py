"""What renewd asks of billing and provisioning, and what they answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from renewd.errors import RenewdError


class TransientError(RenewdError):
    """The backend could not be reached or answered 5xx after every retry: try again next run."""


class SettingsError(RenewdError):
    """A backend's or sender's settings in the config are wrong."""


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

    def charge(self, charge: Charge) -> Outcome: ...


class Provisioning(Protocol):
    name: str

    def delete(self, removal: Removal) -> Outcome: ...


def known_settings(settings: dict[str, Any], allowed: tuple[str, ...], what: str) -> None:
    unknown = sorted(set(settings) - set(allowed) - {"backend", "window"})
    if unknown:
        raise SettingsError(
            f"{what}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(allowed)})"
        )
