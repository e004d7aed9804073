"""A hostile template and hostile clients against `renewd serve`, in a child limited to 2 GiB.

A template edit that would run away is refused on reload (the last good policy kept); when the
run then meets it, only that message fails, recorded in the history, and the run goes on.
Clients that go away mid-answer leave JSON logs all JSON."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from peers.ports import free_port

from support import Project, csv_row, until

DAY = date(2026, 12, 1)
MEMORY = 2 << 30
HOSTILE = "{{ 2 ** (10 ** 10) }}\n"


def limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def serve(project: Project, *args: str) -> subprocess.Popen[str]:
    command = [
        str(Path(sys.executable).parent / "renewd"),
        "serve",
        "--config",
        str(project.config),
    ]
    env = {**os.environ, "RENEWD_FAKE_NOW": "2026-12-01T10:00:00+08:00"}
    return subprocess.Popen(
        [*command, *args], stderr=subprocess.PIPE, text=True, env=env, preexec_fn=limited
    )


def health(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
            body: dict[str, Any] = json.loads(answer.read())
            return body
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read())
        return body
    except OSError:
        return None


def last_run(port: int) -> dict[str, Any]:
    found = health(port)
    return found["last_run"] if found else {}


def project_with_listener(tmp_path: Path, port: int) -> Project:
    (tmp_path / "tpl").mkdir(exist_ok=True)  # the override folder the config names must exist
    serving = (
        f"serve: {{listen: '127.0.0.1:{port}', run_at: '02:00', snapshot_deadline: '08:00'}}\n"
    )
    return Project(
        tmp_path, extra="templates: tpl\n" + serving, snapshot="snapshots/mailboxes-{date}.csv"
    )


def stop(daemon: subprocess.Popen[str]) -> tuple[int, str]:
    daemon.send_signal(signal.SIGTERM)
    _, errors = daemon.communicate(timeout=60)
    return daemon.returncode, errors


def test_a_runaway_template_is_refused_on_reload_and_fails_only_its_message(
    tmp_path: Path,
) -> None:
    port = free_port()
    project = project_with_listener(tmp_path, port)
    project.snapshot(csv_row("mb-1", DAY + timedelta(days=30)), day=DAY)
    daemon = serve(project)
    try:
        until(lambda: last_run(port).get("status") == "done", "the first run done", 60)
        policy = health(port)["policy"]  # type: ignore[index]
        beside = project.cli("check")  # the port is the running daemon's own: not a problem
        assert (beside.returncode, beside.stderr) == (0, ""), beside.stderr
        template = tmp_path / "tpl" / "zh-CN" / "renewal-reminder" / "sms.txt"
        template.parent.mkdir(parents=True)
        template.write_text(HOSTILE, encoding="utf-8")
        until(lambda: bool(health(port)["reload_errors"]), "the reload refused", 60)  # type: ignore[index]
        after = health(port)
        assert after is not None and after["policy"] == policy
        assert after["reload_errors"] == [
            f"{template}:1: '**' would make a number of 20,000,000,000 bits; at most 8,192"
        ]
        project.snapshot(
            csv_row("mb-1", DAY + timedelta(days=30)),
            csv_row("mb-2", DAY + timedelta(days=30)),
            day=DAY,
        )
        daemon.send_signal(signal.SIGUSR1)
        until(lambda: last_run(port).get("outcomes", {}).get("notify:sms:failed") == 1, "run 2", 60)
        assert last_run(port)["status"] == "done"
    finally:
        code, errors = stop(daemon)
    assert code == 0, errors
    assert "Traceback" not in errors
    assert sorted(str(m["To"]) for m in project.emails()) == [
        "mb-1@example.cn",
        "mb-2@example.cn",
    ]
    history = project.cli("history", "mb-2").stdout
    assert (
        f"cannot render: {template}:1: '**' would make a number of 20,000,000,000 bits" in history
    )


def test_clients_that_go_away_leave_json_logs_all_json(tmp_path: Path) -> None:
    port = free_port()
    project = project_with_listener(tmp_path, port)
    project.snapshot(csv_row("mb-1", DAY + timedelta(days=30)), day=DAY)
    daemon = serve(project, "--log-format", "json")
    try:
        until(lambda: last_run(port).get("status") == "done", "the first run done", 60)
        for _ in range(30):
            client = socket.create_connection(("127.0.0.1", port), timeout=10)
            client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
        assert health(port) is not None
    finally:
        code, errors = stop(daemon)
    assert code == 0, errors
    records = [json.loads(line) for line in errors.splitlines()]
    assert any("run 1 for 2026-12-01 done" in r["message"] for r in records)
