"""Prints each message's envelope to stdout: for trying a policy out, never for production."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from renewd.config.plugins import known_settings
from renewd.delivery.senders.base import Outbound, Result, Status, masked


class ConsoleSender:
    def __init__(self, settings: dict[str, Any], base: Path, channel: str) -> None:
        known_settings(settings, (), f"senders.{channel}")
        self.channel = channel

    async def send(self, message: Outbound) -> Result:
        what = message.subject or message.text
        click.echo(f"[{self.channel}] {masked(message.to)} ({message.locale}): {what}")
        return Result(Status.SENT, provider_id=message.key)

    async def close(self) -> None:
        return None
