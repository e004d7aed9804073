"""The embedded sender: email into a Maildir (one .eml per message), SMS as JSON lines.

So that the first command on a fresh install produces real messages to look at, and so that
operators can preview a run's messages with any mail client.

An email is written as the bytes SMTP would carry (`flat.py`) into the Maildir's tmp/, synced
and renamed into new/, as Maildir delivery is done; the write and its fsync run in a thread,
`concurrency` of them at a time (default 8), so that the disk's waits overlap.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import mailbox
import os
import socket
import time
from pathlib import Path
from typing import Any, TextIO

from renewd.config.plugins import SettingsError, known_settings
from renewd.delivery.senders.base import Outbound, Result, Status, email_message, setting
from renewd.delivery.senders.flat import Flattener


class FileSender:
    def __init__(self, settings: dict[str, Any], base: Path, channel: str) -> None:
        what = f"senders.{channel}"
        known_settings(settings, ("path", "from", "reply_to", "concurrency"), what)
        self.channel = channel
        self.path = base / setting(settings, "path", what)
        self.sender = setting(settings, "from", what, "renewd@localhost")
        self.reply_to = str(settings.get("reply_to", ""))
        concurrency = settings.get("concurrency", 8)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise SettingsError(f"{what}: 'concurrency' must be a whole number, 1 or more")
        self.concurrency = concurrency
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.maildir = mailbox.Maildir(self.path, create=True) if channel == "email" else None
        self.flattener = Flattener(self.sender, self.reply_to)
        self.names = itertools.count()
        self.host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
        self.lines: TextIO | None = None  # the SMS file, open for the run

    async def send(self, message: Outbound) -> Result:
        if self.maildir is None:
            record = {
                "key": message.key,
                "to": message.to,
                "locale": message.locale,
                "body": message.text,
            }
            if self.lines is None:
                self.lines = self.path.open("a", encoding="utf-8")
            self.lines.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.lines.flush()  # a whole line in the file once it counts as sent
            return Result(Status.SENT, provider_id=message.key)
        try:
            flat = self.flattener.flat(message)
            if flat is None:  # not a plain address: the email package writes it
                email = email_message(message, self.sender, self.reply_to)
                return Result(Status.SENT, provider_id=self.maildir.add(email))
        except ValueError as exc:
            return Result(Status.FAILED, error=str(exc))
        return Result(Status.SENT, provider_id=await asyncio.to_thread(self._deliver, flat.data))

    def _deliver(self, data: bytes) -> str:
        """Maildir delivery: a unique name in tmp/, written and synced, then moved to new/."""
        name = f"{time.time_ns() // 1000}.P{os.getpid()}Q{next(self.names)}.{self.host}"
        temporary = self.path / "tmp" / name
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temporary, self.path / "new" / name)
        return name

    async def close(self) -> None:
        if self.lines is not None:
            self.lines.close()
            self.lines = None
