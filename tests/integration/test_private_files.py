"""What renewd writes holds full addresses and phone numbers: owner-only whatever the umask, and
never written through a symbolic link planted where its state or outbox should be."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from renewd.delivery.senders.base import Outbound, Status
from renewd.delivery.senders.file import FileSender

from support import Project, csv_row

DAY = date(2026, 12, 1)


def run_with_umask(project: Project, umask: int) -> subprocess.CompletedProcess[str]:
    """`renewd run` as an operator with a permissive umask would start it by hand."""
    command = [
        str(Path(sys.executable).parent / "renewd"),
        *("run", "--date", DAY.isoformat(), "--config", str(project.config)),
    ]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=lambda: os.umask(umask),
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_messages_and_the_ledger_are_owner_only_under_a_permissive_umask(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.snapshot(csv_row("mb-1", DAY + timedelta(days=30)))
    done = run_with_umask(project, 0o002)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    [email] = (out / "mail" / "new").iterdir()
    files = [email, out / "sms.jsonl", tmp_path / "state" / "ledger.sqlite3"]
    files.append(tmp_path / "state" / "ledger.sqlite3.lock")
    assert {str(f.relative_to(tmp_path)): mode(f) for f in files} == {
        str(f.relative_to(tmp_path)): 0o600 for f in files
    }
    folders = [out, out / "mail", *(out / "mail" / sub for sub in ("tmp", "new", "cur"))]
    assert {mode(f) for f in folders} == {0o700}
    assert len(project.emails()) == 1 and len(project.sms()) == 1


@pytest.mark.parametrize(
    ("link", "message"),
    [
        ("out/sms.jsonl", "senders.sms: {path} is a symbolic link; renewd does not follow links"),
        ("out/mail", "senders.email: {path} is a symbolic link; renewd does not follow links"),
        ("state/ledger.sqlite3", "ledger {path} is a symbolic link; renewd does not follow links"),
        ("state/ledger.sqlite3.lock", "cannot open the lock file {path}: Too many levels"),
    ],
)
def test_a_symbolic_link_where_state_or_outbox_belongs_is_refused(
    tmp_path: Path, link: str, message: str
) -> None:
    project = Project(tmp_path)
    project.snapshot(csv_row("mb-1", DAY + timedelta(days=30)))
    victim = tmp_path / "victim"
    victim.write_text("precious\n", encoding="utf-8")
    path = tmp_path / link
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(victim)
    done = project.run(DAY)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(message.format(path=path)), done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert victim.read_text(encoding="utf-8") == "precious\n"


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_a_link_planted_after_start_leaves_the_message_waiting(
    tmp_path: Path, channel: str
) -> None:
    path = "mail" if channel == "email" else "sms.jsonl"
    sender = FileSender({"backend": "file", "path": path}, tmp_path, channel)
    victim = tmp_path / "victim"
    if channel == "email":  # the spool's tmp/ turned into a link to another folder
        victim.mkdir()
        planted = tmp_path / "mail" / "tmp"
        planted.rmdir()
    else:
        victim.write_text("precious\n", encoding="utf-8")
        planted = tmp_path / "sms.jsonl"
    planted.symlink_to(victim)
    message = Outbound("renewd-1", channel, "a@example.com", "en", "Hi", "Hello", "")
    result = asyncio.run(sender.send(message))
    assert result.status is Status.RETRY
    assert "is a symbolic link; renewd does not follow links" in result.error
    if channel == "email":
        assert list(victim.iterdir()) == []
    else:
        assert victim.read_text(encoding="utf-8") == "precious\n"
