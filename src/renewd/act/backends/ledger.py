"""The embedded backends: the ledger itself is the record (consumption orders, deletions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from renewd.act.backends.base import Charge, Outcome, Removal
from renewd.config.plugins import known_settings


class LedgerBilling:
    """Charges by recording the consumption order; `renewd orders` exports them for invoicing."""

    name = "ledger"

    def __init__(self, settings: dict[str, Any], base: Path) -> None:
        known_settings(settings, (), "billing")

    async def charge(self, charge: Charge) -> Outcome:
        return Outcome("charged", reference=charge.idempotency_key)

    async def close(self) -> None:
        return None


class LedgerProvisioning:
    """Records deletions only: for operators whose provisioning reads renewd's ledger."""

    name = "ledger"

    def __init__(self, settings: dict[str, Any], base: Path) -> None:
        known_settings(settings, (), "provisioning")

    async def delete(self, removal: Removal) -> Outcome:
        return Outcome("deleted", reference=removal.idempotency_key)

    async def close(self) -> None:
        return None
