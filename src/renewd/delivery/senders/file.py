"""The embedded sender: email into a Maildir (one .eml per message), SMS as JSON lines.

So that the first command on a fresh install produces real messages to look at, and so that
operators can preview a run's messages with any mail client.
"""

from __future__ import annotations

import json
import mailbox
from pathlib import Path
from typing import Any

from renewd.config.plugins import known_settings
from renewd.delivery.senders.base import Outbound, Result, Status, email_message, setting


class FileSender:
    def __init__(self, settings: dict[str, Any], base: Path, channel: str) -> None:
        what = f"senders.{channel}"
        known_settings(settings, ("path", "from", "reply_to"), what)
        self.channel = channel
        self.path = base / setting(settings, "path", what)
        self.sender = setting(settings, "from", what, "renewd@localhost")
        self.reply_to = str(settings.get("reply_to", ""))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.maildir = mailbox.Maildir(self.path, create=True) if channel == "email" else None

    async def send(self, message: Outbound) -> Result:
        if self.maildir is None:
            record = {
                "key": message.key,
                "to": message.to,
                "locale": message.locale,
                "body": message.text,
            }
            with self.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            return Result(Status.SENT, provider_id=message.key)
        try:
            email = email_message(message, self.sender, self.reply_to)
        except ValueError as exc:
            return Result(Status.FAILED, error=str(exc))
        return Result(Status.SENT, provider_id=self.maildir.add(email))

    async def close(self) -> None:
        return None
