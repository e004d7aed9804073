"""Several renewd processes on one PostgreSQL ledger, as large operators run them.

The run lock is a session advisory lock there: these tests hold it with a real `renewd run`
(parked in a charge the billing peer answers only when the test says so), kill its holder,
and start runs side by side, then count what the billing and SMTP peers really received.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from peers.backend import BackendPeer
from peers.postgres import Postgres
from peers.smtp import PASSWORD, SmtpPeer
from renewd.state.lock import RunLock

from support import (
    Project,
    assert_stopped_midway,
    csv_row,
    end_session,
    lock_session,
    queue_for_lock,
    until,
)

DAY = date(2026, 12, 1)
BUSY = "another renewd is working on this ledger"


def days(n: int) -> date:
    return DAY + timedelta(days=n)


class Runs:
    """`renewd run` processes started in the background; any still alive at the end are killed."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[str]] = []

    def start(
        self, project: Project, day: date, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        command = [str(Path(sys.executable).parent / "renewd"), "run", "--date", day.isoformat()]
        process = subprocess.Popen(
            [*command, *args, "--config", str(project.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "RENEWD_TEST_SMTP_PASSWORD": PASSWORD, **(env or {})},
        )
        self.started.append(process)
        return process


@pytest.fixture
def runs() -> Iterator[Runs]:
    started = Runs()
    yield started
    for process in started.started:
        if process.poll() is None:
            process.kill()  # SIGKILL ends a stopped (held) process too
        process.communicate()


def billing(peer: BackendPeer) -> str:
    """One attempt with a timeout longer than any hold, so a parked charge is never retried."""
    return f"{{backend: http, url: '{peer.url}', timeout: 60, attempts: 1, backoff: 0}}"


def lock_attempts(project: Project) -> int:
    """Sessions on the ledger whose last statement tried the run lock (held or refused)."""
    return int(
        project.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE '%pg_try_advisory_lock%' AND pid <> pg_backend_pid()"
        )
    )


def test_while_one_run_works_a_second_is_refused_and_one_that_waits_finds_nothing_left(
    tmp_path: Path, postgres: Postgres, runs: Runs
) -> None:
    with BackendPeer(slow_seconds=60) as peer:
        project = Project(tmp_path, billing=billing(peer), ledger=postgres.database())
        project.snapshot(
            csv_row("mb-renew", days(3), auto_renew=True, balance="500.00"),
            csv_row("mb-remind", days(30)),
        )
        peer.script["mb-renew"] = ["slow"]  # charged at once, answered when the test releases it
        first = runs.start(project, DAY)
        assert peer.wait_for(1, 30), "the first run never reached billing"

        refused = project.run(DAY)
        assert refused.returncode == 75, refused.stdout + refused.stderr
        assert BUSY in refused.stderr
        assert f"held by host {socket.gethostname()} pid {first.pid}" in refused.stderr
        waiting = runs.start(project, DAY, "--wait", "60")
        until(lambda: lock_attempts(project) >= 2, "the waiting run tried the lock")
        assert waiting.poll() is None

        peer.release.set()
        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, out + err
        out, err = waiting.communicate(timeout=60)
        assert waiting.returncode == 0, out + err
        assert "nothing to do" in out

    assert [key for key, _ in peer.requests] == ["renewd:charge:mb-renew:2026-12-04"]
    assert sorted(str(m["To"]) for m in project.emails()) == [
        "mb-remind@example.cn",
        "mb-renew@example.cn",
    ]
    assert len(project.sms()) == 1


def test_a_killed_run_leaves_no_lock_and_the_next_finishes_its_work_once(
    tmp_path: Path, postgres: Postgres, runs: Runs
) -> None:
    with BackendPeer(slow_seconds=60) as peer:
        project = Project(tmp_path, billing=billing(peer), ledger=postgres.database())
        project.snapshot(csv_row("mb-renew", days(3), auto_renew=True, balance="500.00"))
        peer.script["mb-renew"] = ["slow"]
        holder = runs.start(project, DAY)
        assert peer.wait_for(1, 30), "the run never reached billing"
        holder.kill()  # SIGKILL while it holds the lock and its charge is in flight
        holder.communicate()
        assert holder.returncode == -9

        after = project.run(DAY)  # no --wait: the lock must be free already
        assert after.returncode == 0, after.stdout + after.stderr

    # the retry carried the same idempotency key: one charge, and one success message
    assert {key for key, _ in peer.requests} == {"renewd:charge:mb-renew:2026-12-04"}
    assert len(peer.effects) == 1
    assert [(o["mailbox_id"], o["state"]) for o in project.orders()] == [("mb-renew", "charged")]
    assert [str(m["To"]) for m in project.emails()] == ["mb-renew@example.cn"]
    assert "crashed" in project.cli("runs").stdout


def test_runs_started_together_charge_and_remind_each_mailbox_once(
    tmp_path: Path, postgres: Postgres, runs: Runs
) -> None:
    with SmtpPeer(tmp_path) as smtp, BackendPeer() as peer:
        project = Project(
            tmp_path,
            billing=billing(peer),
            email=smtp.settings(connections=2, timeout=5),
            ledger=postgres.database(),  # new and empty: the schema is created by whoever wins
        )
        renewals = [f"mb-renew-{n}" for n in range(10)]
        reminders = [f"mb-remind-{n}" for n in range(20)]
        project.snapshot(
            *(csv_row(m, days(3), auto_renew=True, balance="500.00") for m in renewals),
            *(csv_row(m, days(30)) for m in reminders),
        )
        together = [runs.start(project, DAY, "--wait", "120") for _ in range(4)]
        results = [(p.communicate(timeout=120), p.returncode) for p in together]
        assert [code for _, code in results] == [0] * 4, results
        assert sum("nothing to do" in out for (out, _), _ in results) == 3

    charges = Counter(body["mailbox_id"] for _, body in peer.requests)
    assert charges == Counter(renewals), "a fee was asked for twice"
    sent = Counter(str(m["To"]) for m in smtp.handler.messages)
    assert sent == Counter(f"{m}@example.cn" for m in renewals + reminders)
    assert sum(o["state"] == "charged" for o in project.orders()) == 10


def test_a_run_that_loses_its_lock_mid_delivery_stops_and_says_so(
    tmp_path: Path, postgres: Postgres, runs: Runs
) -> None:
    """The session holding the lock ends under a long run and another renewd takes the ledger:
    the run stops after the message in flight (exit 75) instead of sending beside it."""
    with SmtpPeer(tmp_path) as smtp:
        email = smtp.settings(connections=1, timeout=5)
        project = Project(tmp_path, email=email, ledger=postgres.database())
        project.snapshot(*(csv_row(f"delay-{n}", days(30), phone="") for n in range(20)))
        run = runs.start(project, DAY)
        assert smtp.handler.wait_for(3, 30)
        holder = lock_session(project)
        let_go = queue_for_lock(project, holder)
        end_session(project, holder)  # the waiting renewd has the ledger now
        _, err = run.communicate(timeout=60)
        let_go()
        assert run.returncode == 75, err
        assert BUSY in err
        assert_stopped_midway(project, len(smtp.handler.messages), 20)


def held(process: subprocess.Popen[str]) -> bool:
    """The process stopped itself at its hold point (RENEWD_HOLD_AT): state T in /proc."""
    with open(f"/proc/{process.pid}/stat", encoding="ascii") as stat:
        return stat.read().rpartition(")")[2].split()[0] == "T"


def test_a_run_cut_off_from_the_ledger_repeats_at_most_what_it_had_in_flight(
    tmp_path: Path, postgres: Postgres, runs: Runs
) -> None:
    """Run A is frozen after its 10th commit of claims and outcomes, messages out; its lock
    session is ended; run B takes the ledger and does the day; then A goes on, still believing
    it holds the ledger. A claims nothing more: the messages repeated are at most what A had in
    flight (two per sending slot), A exits 75 and its record says it lost the ledger, with what
    it did. (Frozen between commits: a process frozen inside a transaction holds its row locks,
    and PostgreSQL's idle_in_transaction_session_timeout is what frees them.)"""
    connections, total = 2, 150
    with SmtpPeer(tmp_path) as smtp:
        project = Project(
            tmp_path,
            email=smtp.settings(connections=connections, timeout=5),
            ledger=postgres.database(),
        )
        project.snapshot(*(csv_row(f"mb-{n:03d}", days(30), phone="") for n in range(total)))
        a = runs.start(project, DAY, env={"RENEWD_HOLD_AT": "after-commit#10"})
        until(lambda: held(a), "run A held after its 10th commit")
        end_session(project, lock_session(project))  # a DBA, a restart, a dropped connection
        b = runs.start(project, DAY)
        out, err = b.communicate(timeout=120)
        assert b.returncode == 0, out + err
        a.send_signal(signal.SIGCONT)
        _, err = a.communicate(timeout=60)
        assert a.returncode == 75, err
        assert "another renewd took the ledger" in err

    sent = Counter(str(m["To"]) for m in smtp.handler.messages)
    assert set(sent) == {f"mb-{n:03d}@example.cn" for n in range(total)}, "a message was lost"
    repeats = sum(sent.values()) - total
    print(f"\nrepeats: {repeats} (bound {2 * connections}); {len(smtp.handler.messages)} sent")
    assert repeats <= 2 * connections, f"{repeats} messages went out twice"
    records = project.cli("runs").stdout.splitlines()
    a_record = next(line for line in records if line.split()[:1] == ["1"])
    b_record = next(line for line in records if line.split()[:1] == ["2"])
    assert " lost " in a_record and "notify:email:sent=" in a_record, a_record
    assert " done " in b_record, b_record
    assert project.scalar("SELECT count(*) FROM actions WHERE state <> 'done'") == 0


KEEPALIVE = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "4",
    "tcp_user_timeout": "40000",
}


def test_the_lock_session_probes_its_client_so_a_dead_host_frees_the_lock(
    tmp_path: Path, postgres: Postgres
) -> None:
    """The server's side of the lock session sends TCP keepalives after 10 s of silence (4
    probes, 5 s apart) and gives up on unacknowledged data after 40 s: the lock of a host that
    died is freed within about a minute, not after the kernel's two hours."""
    project = Project(tmp_path, ledger=postgres.database())
    ledger = project.ledger()
    try:
        with RunLock(ledger.engine) as lock:
            session = lock._connection
            assert session is not None
            shown = {name: session.execute(text(f"SHOW {name}")).scalar() for name in KEEPALIVE}
    finally:
        ledger.close()
    assert shown == KEEPALIVE
