"""Billing peers that redirect, trickle, flood or lie, on loopback: nothing is booked that the
peer did not confirm for this very charge, no peer holds a charge (or renewd's memory) hostage,
and the operator hears of it. The contract is the README's "HTTP billing and provisioning"."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from peers.backend import BackendPeer
from peers.hostile import HostilePeer

from support import Project, csv_row

DAY = date(2026, 12, 1)
KEY = "renewd:charge:mb-renew:2026-12-04"


def http(url: str, **settings: object) -> str:
    options = {"timeout": 5, "deadline": 5, "attempts": 1, "backoff": 0, **settings}
    return (
        "{backend: http, url: '"
        + url
        + "', "
        + ", ".join(f"{k}: {v}" for k, v in options.items())
        + "}"
    )


def renewal(project: Project, count: int = 1) -> None:
    names = ["mb-renew"] if count == 1 else [f"mb-renew-{n}" for n in range(count)]
    project.snapshot(
        *(
            csv_row(name, DAY + timedelta(days=3), auto_renew=True, balance="500.00")
            for name in names
        )
    )


def run(project: Project, limit_bytes: int | None = None) -> subprocess.CompletedProcess[str]:
    """`renewd run` in a child, within a generous time; with an address-space cap if asked."""

    def cap() -> None:
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    command = [str(Path(sys.executable).parent / "renewd"), "run", "--date", DAY.isoformat()]
    return subprocess.run(
        [*command, "--config", str(project.config)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=cap,
        env=os.environ,
        check=False,
    )


def open_and_alerted(project: Project, words: str) -> None:
    """The charge was not booked and not refused: the order waits, the customer heard nothing,
    and one operator alert says what the peer did."""
    assert [(o["mailbox_id"], o["state"]) for o in project.orders()] == [("mb-renew", "pending")]
    assert project.emails() == [], "a charge nobody confirmed was told to the customer"
    alerts = project.scalar(
        "SELECT count(*) FROM alerts WHERE message LIKE :words", words=f"%{words}%"
    )
    assert alerts == 1


@pytest.mark.parametrize("status", [302, 303, 307, 308])
def test_a_redirect_is_never_followed_and_never_final(tmp_path: Path, status: int) -> None:
    with (
        BackendPeer() as elsewhere,
        HostilePeer("redirect", status=status, target=elsewhere.url) as peer,
    ):
        project = Project(tmp_path, billing=http(peer.url), extra="")
        renewal(project)
        result = run(project)
        assert result.returncode == 0, result.stderr
        assert elsewhere.requests == [], "the charge (and its token) went to another address"
        assert len(peer.requests) == 1
    open_and_alerted(project, "redirect")
    assert "stopped billing" in result.stdout


def test_a_peer_that_trickles_does_not_hold_the_charge(tmp_path: Path) -> None:
    """One byte every 2 s never trips a per-read timeout; the deadline of the attempt does."""
    with HostilePeer("trickle", trickle_seconds=2.0) as peer:
        project = Project(tmp_path, billing=http(peer.url, timeout=10, deadline=3))
        renewal(project)
        result = run(project)  # the answer would take ten minutes to trickle in
        assert result.returncode == 0, result.stderr
    open_and_alerted(project, "deadline")


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_huge_answer_is_not_read(tmp_path: Path, declared: bool) -> None:
    """A 300 MB answer, within an address space that could not hold it: refused, not read."""
    with HostilePeer("huge", declared=declared) as peer:
        project = Project(tmp_path, billing=http(peer.url))
        renewal(project)
        result = run(project, limit_bytes=_headroom(200 * 1024 * 1024))
        assert result.returncode == 0, result.stderr[-2000:]
    open_and_alerted(project, "max_answer_bytes")


@pytest.mark.parametrize(
    "lie", ["renewd:charge:someone-else:2026-12-04", None], ids=["other", "none"]
)
def test_an_answer_about_another_charge_is_not_booked(tmp_path: Path, lie: str | None) -> None:
    with HostilePeer("lie", lie_key=lie) as peer:
        project = Project(tmp_path, billing=http(peer.url))
        renewal(project)
        result = run(project)
        assert result.returncode == 0, result.stderr
    open_and_alerted(project, "another request")
    assert project.cli("orders", "--month", "2026-12").stdout.count("\n") == 1  # the header only


def test_retry_after_is_waited_for(tmp_path: Path) -> None:
    with HostilePeer("busy", retry_after="2") as peer:
        project = Project(tmp_path, billing=http(peer.url, attempts=2))
        renewal(project)
        result = run(project)
        assert result.returncode == 0, result.stderr
    (first, asked), (again, retried) = peer.requests
    assert first == again == KEY
    assert retried - asked >= 2.0, "retried before the peer's Retry-After"
    assert [o["state"] for o in project.orders()] == ["charged"]


def test_one_connection_carries_a_run_of_charges(tmp_path: Path) -> None:
    with BackendPeer() as peer:
        project = Project(tmp_path, billing=http(peer.url))
        renewal(project, count=5)
        result = run(project)
        assert result.returncode == 0, result.stderr
        assert len(peer.effects) == 5
        assert peer.connections == 1


def test_check_refuses_a_url_with_credentials_without_showing_them(tmp_path: Path) -> None:
    project = Project(
        tmp_path, billing=http("https://renewd:hunter2-secret@billing.example.com/charge")
    )
    result = project.cli("check")
    assert result.returncode == 1
    assert "must not carry a user name or password" in result.stderr
    assert "hunter2" not in result.stdout + result.stderr


def _headroom(extra: int) -> int:
    """This interpreter's address space now, with renewd's imports, plus `extra` bytes."""
    import renewd.cli.main  # noqa: F401 - what the child will load too

    with open("/proc/self/status", encoding="ascii") as status:
        size = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    return size * 1024 + extra
