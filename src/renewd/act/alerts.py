"""Operator alerts: an email to the configured addresses, through the configured email sender."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import date
from typing import TYPE_CHECKING

from renewd.act.plugins import plugin
from renewd.config.model import Config
from renewd.delivery.senders.base import Outbound, Status

if TYPE_CHECKING:
    from renewd.state.ledger import Ledger

log = logging.getLogger("renewd")


def alert(config: Config, subject: str, body: str) -> None:
    """Log the alert, and mail it to `serve.alert_to` when set. Deduplication is the caller's."""
    settings = config.senders.get("email")
    if not config.serve.alert_to or settings is None:
        log.warning("alert: %s: %s", subject, body)
        return
    sender = plugin("sender", settings["backend"])(settings, config.base, "email")

    async def deliver() -> None:
        try:
            for address in config.serve.alert_to:
                message = Outbound(
                    f"alert-{uuid.uuid4().hex}", "email", address, "en", subject, body + "\n"
                )
                result = await sender.send(message)
                if result.status is not Status.SENT:
                    log.error("alert to %s not sent: %s", address, result.error)
        finally:
            await sender.close()

    asyncio.run(deliver())
    log.warning("alert to %s: %s: %s", ", ".join(config.serve.alert_to), subject, body)


def alert_once(config: Config, ledger: Ledger, day: date, cause: str, message: str) -> None:
    """At most one operator alert per cause and day; sending it never stops a run or the daemon."""
    if not ledger.alert_once(day, cause, message):
        return
    try:
        alert(config, f"[renewd] {cause} on {day}", message)
    except Exception as exc:  # the alert path must not take the work down with it
        log.error("could not send the operator alert %s: %s", cause, exc)
