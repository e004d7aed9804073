"""Bounces from a Maildir: each new file read as a delivery status notification, its receipt
recorded, then the file moved aside.

Read files go to `cur/` marked seen (`:2,S`), as a mail client would; a file that is no
readable report (not a DSN, no valid status, too big, a symbolic link) is kept for a person in
the Maildir++ folder `.malformed/` beside it and counted, never a crash. Receipts are committed
before their files move, so a crash in between reads them again, which changes nothing. Two
readers at once (`serve` and `renewd bounces`) are safe: a receipt is a compare-and-set, and a
file the other moved first is passed over.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

from renewd.act.receipts import Tally, record
from renewd.config.model import Config
from renewd.config.plugins import SettingsError
from renewd.core.errors import RenewdError
from renewd.delivery.dsn import Report, read_report
from renewd.delivery.receipts import ReturnPath
from renewd.policy.model import Policy
from renewd.state.db import SchemaError, database_url, sqlite_path
from renewd.state.ledger import Ledger
from renewd.state.lock import RunLock
from renewd.state.receipts import Receipts
from renewd.state.schema import SCHEMA_VERSION

MAX_REPORT = 4 << 20  # bytes: a bounce quoting our whole message is far smaller
BATCH = 200  # files per ledger transaction
MALFORMED = ".malformed"
SEEN = ":2,S"


class MaildirError(RenewdError):
    """The bounce folder cannot be read as a Maildir."""


def return_path(config: Config) -> ReturnPath:
    """The email sender's per-message return path: what names a bounce's message."""
    template = config.senders.get("email", {}).get("return_path")
    if template is None:
        raise SettingsError(
            "receipts.bounces: bounces cannot be matched to messages without "
            'senders.email.return_path (such as "bounces+{id}@bounce.example.com")'
        )
    return ReturnPath.parse(template, "senders.email")


def bounces_once(config: Config, policy: Policy, folder: Path | None) -> tuple[Path, Tally]:
    """`renewd bounces`: read the Maildir (default: receipts.bounces) once, beside a running
    `serve` or not. Receipts take no lock; a ledger of an older schema is upgraded under it."""
    folder = folder or config.receipts.bounces
    if folder is None:
        raise RenewdError("no Maildir to read: pass --maildir PATH or set receipts.bounces")
    verp = return_path(config)
    url = database_url(config.ledger, config.base)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise SchemaError("the ledger is empty: nothing has run yet, so nothing can have bounced")
    ledger = Ledger(url)
    try:
        version = ledger.version()
        if version is not None and version < SCHEMA_VERSION:
            with RunLock(ledger.engine):
                ledger.upgrade()
        ledger.require_schema()
        return folder, read_bounces(folder, ledger, verp, policy)
    finally:
        ledger.close()


def read_bounces(
    folder: Path,
    ledger: Receipts,
    return_path: ReturnPath,
    policy: Policy,
    stopping: Callable[[], bool] = lambda: False,
) -> Tally:
    """Read every new file of the Maildir once; what it did."""
    new = folder / "new"
    try:
        names = sorted(name for name in os.listdir(new) if not name.startswith("."))
    except OSError as exc:
        raise MaildirError(
            f"{folder}: cannot read it as a Maildir ({new}: {exc.strerror}); point "
            "receipts.bounces (or --maildir) at the Maildir your MTA delivers bounces to"
        ) from None
    tally = Tally()
    for start in range(0, len(names), BATCH):
        if stopping():
            break
        reports = [
            (name, _report(new / name, return_path)) for name in names[start : start + BATCH]
        ]
        found = [(name, report) for name, report in reports if report is not None]
        tally.add(record(ledger, [r.receipt for _, r in found if r.receipt], policy))
        for name, report in found:
            _set_aside(folder, name, report, tally)
    return tally


def _report(path: Path, return_path: ReturnPath) -> Report | None:
    """The file's report; None when another reader took it first."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if path.is_symlink():
            return Report(problem="a symbolic link, not read")
        return Report(problem=f"cannot read it: {exc.strerror}")
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):  # a folder or a pipe planted in new/
        os.close(fd)
        return Report(problem="not a regular file, not read")
    with os.fdopen(fd, "rb") as file:
        if status.st_size > MAX_REPORT:
            return Report(problem=f"larger than {MAX_REPORT >> 20} MiB, not read")
        data = file.read(MAX_REPORT + 1)
    return read_report(data, return_path)


def _set_aside(folder: Path, name: str, report: Report, tally: Tally) -> None:
    base = name.partition(":2,")[0]
    if report.problem:
        target = folder / MALFORMED / "new" / base
        _maildir(folder / MALFORMED)
        tally.outcomes["malformed"] += 1
        tally.problems.append(f"{folder / 'new' / name}: {report.problem} (kept in {target})")
    else:
        target = folder / "cur" / f"{base}{SEEN}"
        if report.receipt is None:
            tally.outcomes["unknown"] += 1  # a report about no message of ours
    with contextlib.suppress(FileNotFoundError):  # another reader moved it first
        os.rename(folder / "new" / name, target)


def _maildir(folder: Path) -> None:
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
