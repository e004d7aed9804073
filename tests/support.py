"""Test helpers: paths, the reference day, and a mailbox factory with sensible defaults."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from renewd.model import Mailbox

ROOT = Path(__file__).resolve().parent.parent
TODAY = date(2026, 12, 1)

BASE = Mailbox(
    mailbox_id="mb-1",
    account_id="acct-1",
    edition="standard",
    expires_on=TODAY + timedelta(days=100),
    auto_renew=False,
    balance=Decimal("0.00"),
    renewal_fee=Decimal("120.00"),
    currency="CNY",
    renewal_months=12,
    email="user@example.com",
    phone="+8613800138000",
    locale="zh-CN",
    domain="",
    domain_via_provider=False,
    domain_expires_on=None,
)


def mailbox(days_to_expiry: int | None = None, **changes: Any) -> Mailbox:
    """A paid mailbox; `days_to_expiry` is counted from TODAY."""
    if days_to_expiry is not None:
        changes["expires_on"] = TODAY + timedelta(days=days_to_expiry)
    for key in ("balance", "renewal_fee"):
        if key in changes:
            changes[key] = Decimal(changes[key])
    return replace(BASE, **changes)
