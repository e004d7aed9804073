"""The embedded sender: email into a Maildir (one .eml per message), SMS as JSON lines.

So that the first command on a fresh install produces real messages to look at, and so that
operators can preview a run's messages with any mail client. What it writes holds full
addresses and phone numbers: every file and folder is created owner-only whatever the umask,
and none is reached through a symbolic link (one planted in a shared directory would have renewd
write wherever it points).

An email is written as the bytes SMTP would carry (`flat.py`) into the Maildir's tmp/, synced
and renamed into new/, as Maildir delivery is done (`maildir.py`: in a thread, the messages of
all slots a batch at a time); `concurrency` messages are out at a time (default 32). The default is
higher than the network senders': each message is claimed in the ledger before it is written, and
a local write takes far less than that commit, so the commits (an fsync each on SQLite) would
otherwise set the pace: 32 slots carry about 60 messages a commit at a 1M-row run, 8 carried 12.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
from email.generator import BytesGenerator
from pathlib import Path
from typing import Any, BinaryIO

from renewd.config.plugins import SettingsError, known_settings
from renewd.delivery.senders.base import Outbound, Result, Status, email_message, setting
from renewd.delivery.senders.flat import Flattener
from renewd.delivery.senders.maildir import NEW_FILE, PRIVATE_FILE, Maildir

LINKED = (
    "is a symbolic link; renewd does not follow links for what it writes: point 'path' at the "
    "real location"
)
PRIVATE_DIR = 0o700
_NEW_FILE = NEW_FILE
CONCURRENCY = 32  # messages in flight per channel (see the module's docstring)


class FileSender:
    def __init__(self, settings: dict[str, Any], base: Path, channel: str) -> None:
        what = f"senders.{channel}"
        known_settings(settings, ("path", "from", "reply_to", "concurrency"), what)
        self.channel = channel
        self.what = what
        self.path = base / setting(settings, "path", what)
        self.sender = setting(settings, "from", what, "renewd@localhost")
        self.reply_to = str(settings.get("reply_to", ""))
        concurrency = settings.get("concurrency", CONCURRENCY)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise SettingsError(f"{what}: 'concurrency' must be a whole number, 1 or more")
        self.concurrency = concurrency
        self.flattener = Flattener(self.sender, self.reply_to)
        host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
        self._maildir = Maildir(self.path, host, channel)
        self._lines: BinaryIO | None = None  # the SMS file, open for the run
        folders = [self.path.parent]
        if channel == "email":
            folders += [self.path, *(self.path / sub for sub in ("tmp", "new", "cur"))]
        for folder in folders:
            _private_dir(folder, what)
        _no_link(self.path, what)

    async def send(self, message: Outbound) -> Result:
        try:
            if self.channel != "email":
                return self._append(message)
            try:
                data = self._bytes(message)
            except ValueError as exc:
                return Result(Status.FAILED, error=str(exc))
            return Result(Status.SENT, provider_id=await self._maildir.deliver(data))
        except OSError as exc:  # a broken spool: the message waits in the outbox for a fix
            return Result(Status.RETRY, error=_why(exc, self.what))

    def _bytes(self, message: Outbound) -> bytes:
        """What SMTP would carry: written flat, or by the email package for an address `flat`
        does not write (not a plain one)."""
        flat = self.flattener.flat(message)
        if flat is not None:
            return flat.data
        buffer = io.BytesIO()
        email = email_message(message, self.sender, self.reply_to)
        BytesGenerator(buffer, mangle_from_=False, maxheaderlen=0).flatten(email)
        return buffer.getvalue()

    def _append(self, message: Outbound) -> Result:
        record = {"key": message.key, "to": message.to, "locale": message.locale}
        line = json.dumps({**record, "body": message.text}, ensure_ascii=False) + "\n"
        if self._lines is None:
            fd = os.open(self.path, _NEW_FILE | os.O_APPEND, PRIVATE_FILE)
            self._lines = os.fdopen(fd, "ab")
        self._lines.write(line.encode("utf-8"))
        self._lines.flush()  # a whole line in the file once it counts as sent
        return Result(Status.SENT, provider_id=message.key)

    async def close(self) -> None:
        await self._maildir.close()
        if self._lines is not None:
            self._lines.close()
            self._lines = None


def _no_link(path: Path, what: str) -> None:
    if path.is_symlink():
        raise SettingsError(f"{what}: {path} {LINKED}")


def _private_dir(folder: Path, what: str) -> None:
    """Created owner-only if missing; one that cannot be made is found when a message is
    written (and waits in the outbox), but a link is refused now."""
    _no_link(folder, what)
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)


def _why(exc: OSError, what: str) -> str:
    where = Path(exc.filename) if exc.filename else None
    if where is not None and where.is_symlink():
        return f"{what}: {where} {LINKED}"
    return f"{what}: cannot write {where or 'the spool'}: {exc.strerror or exc}"
