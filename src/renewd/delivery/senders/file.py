"""The embedded sender: email into a Maildir (one .eml per message), SMS as JSON lines.

So that the first command on a fresh install produces real messages to look at, and so that
operators can preview a run's messages with any mail client. What it writes holds full
addresses and phone numbers: every file and folder is created owner-only whatever the umask,
and none is reached through a symbolic link (one planted in a shared directory would have renewd
write wherever it points).
"""

from __future__ import annotations

import contextlib
import errno
import io
import itertools
import json
import os
import socket
import time
from email.generator import BytesGenerator
from pathlib import Path
from typing import Any

from renewd.config.plugins import SettingsError, known_settings
from renewd.delivery.senders.base import Outbound, Result, Status, email_message, setting

LINKED = (
    "is a symbolic link; renewd does not follow links for what it writes: point 'path' at the "
    "real location"
)
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW


class FileSender:
    def __init__(self, settings: dict[str, Any], base: Path, channel: str) -> None:
        what = f"senders.{channel}"
        known_settings(settings, ("path", "from", "reply_to"), what)
        self.channel = channel
        self.what = what
        self.path = base / setting(settings, "path", what)
        self.sender = setting(settings, "from", what, "renewd@localhost")
        self.reply_to = str(settings.get("reply_to", ""))
        self._names = itertools.count()
        self._host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
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
                email = email_message(message, self.sender, self.reply_to)
            except ValueError as exc:
                return Result(Status.FAILED, error=str(exc))
            buffer = io.BytesIO()
            BytesGenerator(buffer, mangle_from_=False, maxheaderlen=0).flatten(email)
            return Result(Status.SENT, provider_id=self._deliver(buffer.getvalue()))
        except OSError as exc:  # a broken spool: the message waits in the outbox for a fix
            return Result(Status.RETRY, error=_why(exc, self.what))

    def _append(self, message: Outbound) -> Result:
        record = {"key": message.key, "to": message.to, "locale": message.locale}
        line = json.dumps({**record, "body": message.text}, ensure_ascii=False) + "\n"
        _write(self.path, os.O_APPEND, line.encode("utf-8"))
        return Result(Status.SENT, provider_id=message.key)

    def _deliver(self, data: bytes) -> str:
        """Maildir delivery: written whole under tmp/, then renamed into new/."""
        name = f"{time.time_ns()}.P{os.getpid()}Q{next(self._names)}.{self._host}"
        for folder in ("tmp", "new"):  # O_NOFOLLOW guards the file, not the folder it is in
            if (self.path / folder).is_symlink():
                raise OSError(errno.ELOOP, "a symbolic link", str(self.path / folder))
        temporary = self.path / "tmp" / name
        _write(temporary, os.O_EXCL, data)
        os.rename(temporary, self.path / "new" / name)
        return name

    async def close(self) -> None:
        return None


def _no_link(path: Path, what: str) -> None:
    if path.is_symlink():
        raise SettingsError(f"{what}: {path} {LINKED}")


def _private_dir(folder: Path, what: str) -> None:
    """Created owner-only if missing; one that cannot be made is found when a message is
    written (and waits in the outbox), but a link is refused now."""
    _no_link(folder, what)
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)


def _write(path: Path, flags: int, data: bytes) -> None:
    fd = os.open(path, _NEW_FILE | flags, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def _why(exc: OSError, what: str) -> str:
    where = Path(exc.filename) if exc.filename else None
    if where is not None and where.is_symlink():
        return f"{what}: {where} {LINKED}"
    return f"{what}: cannot write {where or 'the spool'}: {exc.strerror or exc}"
