"""`renewd serve` as a real process: schedule, reload, missing snapshot, signals, health, systemd.

Every test that touches the ledger runs on SQLite and on PostgreSQL; the schedule and systemd
tests do not, and run once.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from peers.ports import free_port
from peers.postgres import Postgres
from peers.smtp import PASSWORD, SmtpPeer
from renewd.state.lock import RunLock

from support import (
    ROOT,
    Project,
    Served,
    assert_stopped_midway,
    csv_row,
    end_session,
    get,
    lock_session,
    queue_for_lock,
)

DAY = date(2026, 12, 1)


def daemon_project(
    tmp_path: Path, port: int, extra: str = "", serving: str = "", **kwargs: Any
) -> Project:
    serve = f"serve: {{listen: '127.0.0.1:{port}', alert_to: [ops@example.com], run_at: '02:00', snapshot_deadline: '08:00'{serving}}}\n"
    return Project(
        tmp_path, extra=serve + extra, snapshot="snapshots/mailboxes-{date}.csv", **kwargs
    )


def test_serve_does_the_days_work_and_reports_health_and_metrics(
    tmp_path: Path, served: list[Served], ledger: str
) -> None:
    port = free_port()
    project = daemon_project(tmp_path, port, ledger=ledger)
    project.snapshot(csv_row("mb-1", DAY + timedelta(days=30)), day=DAY)
    daemon = Served(project, "2026-12-01T10:00:00+08:00")
    served.append(daemon)
    assert "for 2026-12-01 done" in daemon.expect("run 1 for 2026-12-01")
    assert len(project.emails()) == 1 and len(project.sms()) == 1
    status, body = get(port, "/healthz")
    health = json.loads(body)
    assert (
        status == 200 and health["healthy"] and health["next_run"].startswith("2026-12-02 02:00:00")
    )
    status, metrics = get(port, "/metrics")
    assert 'renewd_runs_total{status="done"} 1.0' in metrics
    assert 'renewd_sends_total{channel="email",outcome="sent"} 1.0' in metrics
    assert "renewd_outbox_depth 0.0" in metrics
    status_lines = project.cli("status").stdout
    assert "last run: 1 for 2026-12-01 done" in status_lines and "daemon: ok" in status_lines
    assert daemon.stop() == 0


def test_the_next_day_runs_at_its_time(tmp_path: Path, served: list[Served]) -> None:
    port = free_port()
    project = daemon_project(tmp_path, port, rules=ROOT / "rules")
    project.snapshot(csv_row("mb-1", DAY + timedelta(days=100)), day=DAY + timedelta(days=1))
    daemon = Served(project, "2026-12-02T01:59:57+08:00")  # run_at 02:00: three seconds later
    served.append(daemon)
    daemon.expect("run 1 for 2026-12-02")  # on start: today's work
    daemon.expect("run 2 for 2026-12-02")  # the scheduled run, at 02:00
    assert json.loads(get(port, "/healthz")[1])["next_run"].startswith("2026-12-03 02:00:00")
    assert daemon.stop() == 0


def test_reload_takes_a_good_edit_and_keeps_the_last_good_policy(
    tmp_path: Path, served: list[Served], ledger: str
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    port = free_port()
    project = daemon_project(tmp_path, port, rules=rules, ledger=ledger)
    project.snapshot(csv_row("mb-1", DAY + timedelta(days=20)), day=DAY)
    daemon = Served(project, "2026-12-01T10:00:00+08:00")
    served.append(daemon)
    daemon.expect("run 1 for 2026-12-01 done: nothing to do")
    policy = rules / "lifecycle.yaml"
    good = policy.read_text(encoding="utf-8").replace(
        "days_before: [30, 15, 7, 3, 1]", "days_before: [30, 20, 15, 7, 3, 1]"
    )
    policy.write_text(good, encoding="utf-8")
    daemon.signal(signal.SIGHUP)
    daemon.expect("policy reloaded")
    daemon.signal(signal.SIGUSR1)
    daemon.expect("run 2 for 2026-12-01 done")
    assert len(project.emails()) == 1  # the new D-20 step
    policy.write_text(
        good.replace(
            "notify: [email, sms]\n  low_balance", "notfy: [email, sms]\n  low_balance", 1
        ),
        encoding="utf-8",
    )
    daemon.signal(signal.SIGHUP)
    refused = daemon.expect("reload refused")
    assert "lifecycle.yaml:" in refused and "did you mean 'notify'" in refused
    kept = daemon.expect("keeping policy")
    status, body = get(port, "/healthz")
    assert status == 200 and json.loads(body)["reload_errors"]
    assert "renewd_policy_reload_failures_total 1.0" in get(port, "/metrics")[1]
    daemon.signal(signal.SIGUSR1)
    daemon.expect("run 3 for 2026-12-01 done")
    assert kept.split()[-1] == json.loads(get(port, "/healthz")[1])["policy"]
    assert daemon.stop() == 0


def test_a_missing_snapshot_is_waited_for_then_the_day_is_skipped_and_alerted_once(
    tmp_path: Path, served: list[Served], ledger: str
) -> None:
    port = free_port()
    project = daemon_project(tmp_path, port, ledger=ledger)
    project.snapshot(
        csv_row("mb-1", DAY + timedelta(days=30)), day=DAY - timedelta(days=1)
    )  # yesterday's only
    daemon = Served(project, "2026-12-01T09:00:00+08:00")  # after the 08:00 deadline
    served.append(daemon)
    daemon.expect("was not there by")
    daemon.expect("alert to ops@example.com: [renewd] snapshot-missing on 2026-12-01")
    daemon.signal(signal.SIGUSR1)
    daemon.expect("was not there by")
    alerts = [m for m in project.emails() if str(m["To"]) == "ops@example.com"]
    assert len(alerts) == 1 and "snapshot-missing" in str(alerts[0]["Subject"])
    assert [
        m for m in project.emails() if "mb-1" in str(m["To"])
    ] == []  # yesterday's file was not used
    assert daemon.stop() == 0


def test_sigterm_mid_delivery_stops_cleanly_and_the_next_start_finishes(
    tmp_path: Path, served: list[Served], ledger: str
) -> None:
    with SmtpPeer(tmp_path) as smtp:
        port = free_port()
        email = smtp.settings(connections=1, timeout=5)
        project = daemon_project(tmp_path, port, email=email, ledger=ledger)
        project.snapshot(
            *(csv_row(f"delay-{n}", DAY + timedelta(days=30), phone="") for n in range(20)), day=DAY
        )
        env = {"RENEWD_TEST_SMTP_PASSWORD": PASSWORD}
        daemon = Served(project, "2026-12-01T10:00:00+08:00", env)
        served.append(daemon)
        assert smtp.handler.wait_for(3, 30)  # past the first message, which goes alone
        daemon.signal(signal.SIGTERM)
        assert daemon.process.wait(timeout=30) == 0  # not stop(): a second signal exits at once
        delivered = len(smtp.handler.messages)
        assert 3 <= delivered < 20
        # the message out was recorded, the one claimed next went back: nothing left "sending"
        state = project.ledger()
        left = [(a["state"], a["attempts"]) for a in state.open_actions("notify")]
        assert left == [("pending", 0)] * (20 - delivered)  # and its attempt given back
        state.close()
        again = Served(project, "2026-12-01T10:05:00+08:00", env)
        served.append(again)
        again.expect("run 2 for 2026-12-01 done")
        assert again.stop() == 0
    addresses = [str(m["To"]) for m in smtp.handler.messages]
    assert set(addresses) == {f"delay-{n}@example.cn" for n in range(20)}
    assert len(addresses) == 20  # a stop lets the message out finish: nothing repeats


def test_a_second_instance_is_refused_until_the_first_is_killed(
    tmp_path: Path, served: list[Served], ledger: str
) -> None:
    port = free_port()
    project = daemon_project(tmp_path, port, ledger=ledger)
    project.snapshot(csv_row("mb-1", DAY + timedelta(days=30)), day=DAY)
    first = Served(project, "2026-12-01T10:00:00+08:00")
    served.append(first)
    first.expect("run 1 for 2026-12-01 done")
    second = Served(project, "2026-12-01T10:00:00+08:00")
    served.append(second)
    assert second.process.wait(timeout=30) == 75
    assert "another renewd is working on this ledger" in second.expect("another renewd")
    manual = project.run(DAY)
    assert manual.returncode == 75
    # the holder named, on SQLite (its lock file) as on PostgreSQL (its session's name)
    assert f"held by host {socket.gethostname()} pid {first.process.pid}" in manual.stderr
    first.process.kill()  # kill -9: the lock dies with the process, nothing stale is left
    assert first.process.wait(timeout=30) == -signal.SIGKILL
    after = project.run(DAY)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "nothing to do" in after.stdout and len(project.emails()) == 1


def test_a_daemon_whose_lock_session_ends_takes_it_again_or_stops(
    tmp_path: Path, served: list[Served], postgres: Postgres
) -> None:
    port = free_port()
    project = daemon_project(
        tmp_path, port, serving=", reload_poll_seconds: 3600", ledger=postgres.database()
    )
    project.snapshot(csv_row("mb-1", DAY + timedelta(days=30)), day=DAY)
    daemon = Served(project, "2026-12-01T10:00:00+08:00")  # wakes only when signalled
    served.append(daemon)
    daemon.expect("run 1 for 2026-12-01 done")

    end_session(project, lock_session(project))
    daemon.signal(signal.SIGUSR1)
    daemon.expect("took it again")
    daemon.expect("run 2 for 2026-12-01 done")
    assert project.run(DAY).returncode == 75  # the daemon holds the ledger again

    end_session(project, lock_session(project))
    other = project.ledger()
    with RunLock(other.engine, wait=30):  # another renewd takes the ledger meanwhile
        daemon.signal(signal.SIGUSR1)
        assert daemon.process.wait(timeout=30) == 75  # it stops rather than run beside it
    other.close()
    assert "another renewd is working on this ledger" in daemon.expect("another renewd")
    assert not [line for line in daemon.seen if "run 3" in line]


def test_a_daemon_that_loses_its_lock_mid_delivery_stops_sending(
    tmp_path: Path, served: list[Served], postgres: Postgres
) -> None:
    with SmtpPeer(tmp_path) as smtp:
        port = free_port()
        project = daemon_project(
            tmp_path,
            port,
            serving=", reload_poll_seconds: 0.5",
            email=smtp.settings(connections=1, timeout=5),
            ledger=postgres.database(),
        )
        project.snapshot(
            *(csv_row(f"delay-{n}", DAY + timedelta(days=30), phone="") for n in range(20)), day=DAY
        )
        env = {"RENEWD_TEST_SMTP_PASSWORD": PASSWORD}
        daemon = Served(project, "2026-12-01T10:00:00+08:00", env)
        served.append(daemon)
        assert smtp.handler.wait_for(3, 30)
        holder = lock_session(project)
        let_go = queue_for_lock(project, holder)
        end_session(project, holder)  # the waiting renewd has the ledger now
        assert daemon.process.wait(timeout=30) == 75  # stopped mid-run, not after all 20
        let_go()
        assert_stopped_midway(project, len(smtp.handler.messages), 20)
    assert "another renewd is working on this ledger" in daemon.expect("another renewd")


def test_systemd_hears_ready_status_and_watchdog(tmp_path: Path, served: list[Served]) -> None:
    port = free_port()
    project = daemon_project(tmp_path, port)
    project.snapshot(csv_row("mb-1", DAY + timedelta(days=30)), day=DAY)
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        listener.settimeout(30)
        daemon = Served(
            project,
            "2026-12-01T10:00:00+08:00",
            {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000"},
        )
        served.append(daemon)
        heard: list[str] = []
        while not {"READY=1", "WATCHDOG=1"} <= set(heard) or not any(
            h.startswith("STATUS=last run") for h in heard
        ):
            heard.append(listener.recv(4096).decode())
        assert daemon.stop() == 0
        while "STOPPING=1" not in heard:
            heard.append(listener.recv(4096).decode())
    assert any("STATUS=last run 2026-12-01 done; outbox 0" in h for h in heard)


# -- health verdicts, progress under serve -----------------------------------------------------


def test_health_is_degraded_by_a_held_run_and_a_refused_reload_and_failing_by_a_failed_run(
    tmp_path: Path, served: list[Served]
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    port = free_port()
    project = daemon_project(tmp_path, port, rules=rules)
    project.snapshot(csv_row("mb-old", DAY - timedelta(days=30)), day=DAY)  # first sight: held
    daemon = Served(project, "2026-12-01T10:00:00+08:00")
    served.append(daemon)
    daemon.expect("run 1 for 2026-12-01 held")
    status, body = get(port, "/healthz")
    health = json.loads(body)
    assert status == 200 and health["status"] == "degraded"
    assert health["problems"] == [
        "the last run held deletions or deductions back: 1 deletion: first sight: renewd has not "
        "seen this mailbox expired on an earlier run of another snapshot (mb-old); the full list: "
        "renewd runs --show 1"
    ]
    policy = rules / "lifecycle.yaml"
    policy.write_text(policy.read_text(encoding="utf-8") + "bogus: 1\n", encoding="utf-8")
    daemon.signal(signal.SIGHUP)
    daemon.expect("keeping policy")
    health = json.loads(get(port, "/healthz")[1])
    assert health["status"] == "degraded" and len(health["problems"]) == 2
    assert health["problems"][0].startswith("a reload was refused (1 problem)")
    assert "daemon: degraded: a reload was refused" in project.cli("status").stdout
    (tmp_path / "snapshots" / "mailboxes-2026-12-01.csv").write_bytes(b"\0\0binary")
    daemon.signal(signal.SIGUSR1)
    daemon.expect("run for 2026-12-01 failed")
    status, body = get(port, "/healthz")
    health = json.loads(body)
    assert status == 503 and health["status"] == "failing" and not health["healthy"]
    assert health["problems"][0].startswith("the last run failed: ")
    assert "daemon: failing: the last run failed" in project.cli("status").stdout
    assert daemon.stop() == 0


def test_a_long_run_shows_its_progress_in_status_metrics_and_the_log(
    tmp_path: Path, served: list[Served]
) -> None:
    """Counters move as each message goes, not when the run ends; systemd's STATUS= says how
    far the sending is; a progress line is logged at the configured interval."""
    with SmtpPeer(tmp_path) as smtp:
        port = free_port()
        project = daemon_project(
            tmp_path,
            port,
            email=smtp.settings(connections=1, timeout=5),
            serving=", progress_seconds: 0.5",
        )
        project.snapshot(
            *(csv_row(f"delay-{n}", DAY + timedelta(days=30), phone="") for n in range(12)),
            day=DAY,
        )
        address = str(tmp_path / "notify.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
            listener.bind(address)
            listener.settimeout(30)
            env = {"RENEWD_TEST_SMTP_PASSWORD": PASSWORD, "NOTIFY_SOCKET": address}
            daemon = Served(project, "2026-12-01T10:00:00+08:00", env)
            served.append(daemon)
            assert smtp.handler.wait_for(3, 30)
            metrics = get(port, "/metrics")[1]
            sent = next(
                float(line.split()[-1])
                for line in metrics.splitlines()
                if line.startswith('renewd_sends_total{channel="email",outcome="sent"}')
            )
            assert 1 <= sent < 12, "the counter waited for the end of the run"
            running = json.loads(get(port, "/healthz")[1])["running"]
            assert running["day"] == "2026-12-01"
            assert running["progress"].startswith("run for 2026-12-01: sending ")
            status = ""
            while not status.startswith("STATUS=run for 2026-12-01: sending"):
                status = listener.recv(4096).decode()
            assert status.endswith("/12 messages")
            line = daemon.expect("progress: run for 2026-12-01: sending")
            while "/s" not in line:  # the first line of a stage has no rate yet
                line = daemon.expect("progress: run for 2026-12-01: sending")
            assert re.search(r"sending \d+/12 messages \(\d+/s, about \d+ s left\)$", line)
            daemon.expect("run 1 for 2026-12-01 done")
            assert daemon.stop() == 0
